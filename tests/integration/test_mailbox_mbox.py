"""expect_delivery on an mbox file (mbox:/var/mail/USER), as Sendmail and procmail deliver: a server on
loopback that appends each message to an mbox with the standard library's locking (as an MTA does), an
mbox of many older messages (only its tail is read), a body line starting "From " (quoted in the file),
a message removed with delete: and the rest left as they were."""

from __future__ import annotations

import asyncio
import json
import mailbox
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.support.cli import run, write_plan
from tests.support.exporter import free_port


class _MboxDelivery:
    """Delivers each message to an mbox, locked as MTAs lock it, a moment after accepting it."""

    def __init__(self, path: Path, delay: float = 0.3) -> None:
        self.path, self.delay = path, delay

    def _append(self, content: bytes) -> None:
        box = mailbox.mbox(str(self.path), create=True)
        box.lock()
        try:
            box.add(mailbox.mboxMessage(content))
            box.flush()
        finally:
            box.unlock()
            box.close()

    async def handle_DATA(self, server, session, envelope) -> str:
        content = envelope.original_content
        asyncio.get_running_loop().call_later(self.delay, self._append, content)
        return "250 2.0.0 Ok: queued"


@pytest.fixture
def mbox_server(tmp_path):
    path = tmp_path / "var-mail" / "alice"
    path.parent.mkdir()
    port = free_port()
    controller = Controller(_MboxDelivery(path), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield path, port
    finally:
        controller.stop()


def _old_messages(path: Path, count: int) -> None:
    box = mailbox.mbox(str(path), create=True)
    for n in range(count):
        msg = mailbox.mboxMessage(f"Message-ID: <old.{n}@smtprun.test>\nSubject: old {n}\n\nold body {n}\n")
        msg.set_from("bob@smtprun.test", time.gmtime(time.time() - 86400))
        box.add(msg)
    box.flush()
    box.close()


def plan(port: int, path: Path, check: str = "") -> str:
    return f"""\
target: {{host: 127.0.0.1, port: {port}, timeout: 10}}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - send: MAIL FROM:<bob@smtprun.test>
    expect: 250
  - send: RCPT TO:<alice@smtprun.test>
    expect: 250
  - send: DATA
    expect: 354
  - data: |
      Subject: to an mbox

      From here on, a line that mbox quotes.
      Bye.
    expect: 250
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: mbox:{path}
      within: 10
{check}"""


def run_json(tmp_path: Path, text: str) -> tuple[int, str, dict]:
    code, out, err = run(write_plan(tmp_path, text), "--json", str(tmp_path / "r.json"), "--no-report")
    return code, out + err, json.loads((tmp_path / "r.json").read_text())


def test_a_message_in_an_mbox_is_found_behind_older_ones(tmp_path, mbox_server):
    path, port = mbox_server
    _old_messages(path, 300)
    check = '      body: "^From here on, a line that mbox quotes"\n'
    code, out, report = run_json(tmp_path, plan(port, path, check))
    assert code == 0, out
    step = report["plans"][0]["cases"][0]["steps"][-1]
    assert step["status"] == "passed", step
    assert len(mailbox.mbox(str(path))) == 301  # read, never changed


def test_delete_removes_only_that_message_from_the_mbox(tmp_path, mbox_server):
    path, port = mbox_server
    _old_messages(path, 3)
    code, out, _ = run_json(tmp_path, plan(port, path).replace("      within: 10\n", "      within: 10\n"
                                                                   "      delete: true\n"))
    assert code == 0, out
    box = mailbox.mbox(str(path))
    assert sorted(m["Message-ID"] for m in box) == [f"<old.{n}@smtprun.test>" for n in range(3)]


def test_an_mbox_that_never_appears_fails_when_the_wait_runs_out(tmp_path, mbox_server):
    _, port = mbox_server
    missing = tmp_path / "bob"
    code, out, report = run_json(tmp_path, plan(port, missing).replace("within: 10", "within: 1.5"))
    step = report["plans"][0]["cases"][0]["steps"][-1]
    assert code == 1, out
    assert step["reason"].startswith(f"no mbox at {missing} yet (mail servers make it with the first delivery); "
                                     "tried "), step["reason"]


def test_an_mbox_url_with_a_folder_is_refused(tmp_path):
    code, out, err = run(write_plan(tmp_path, plan(25, Path("/var/mail/alice#Junk"))), "--no-report")
    assert code == 2
    assert "an mbox: URL is an absolute path to the file, no folder (mbox:/var/mail/alice)" in out + err
