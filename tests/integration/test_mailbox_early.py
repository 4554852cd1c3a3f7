"""Templated mailboxes read as the case starts, against the real Postfix and Dovecot: a typo'd
--var fails the case before it connects (nothing sent, nothing left in a mailbox), a templated
listen:// starts its listener like a written-out one, a mailbox made of a capture is still read at
its step, and a step's expected line shows its values rendered."""

from __future__ import annotations

import asyncio
import json
import mailbox
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.support.cli import ROOT, run, write_plan
from tests.support.exporter import free_port
from tests.support.mtas import (
    CA_PATH,
    DOVECOT,
    POSTFIX,
    RELAY_DOMAIN,
    relay_port_held,
    require_dovecot,
    require_smtp,
)

pytestmark = pytest.mark.postfix

ROUNDTRIP = str(ROOT / "plans/roundtrip.yaml")
OUTBOUND = str(ROOT / "plans/outbound.yaml")
URL_KINDS = "expected a URL starting imap:, imaps:, pop3:, pop3s:, maildir:, mbox:, listen:"


@pytest.fixture(scope="module")
def loop() -> None:
    require_smtp(POSTFIX)
    require_dovecot(DOVECOT)


@pytest.fixture
def relay_port() -> Iterator[int]:
    with relay_port_held() as port:
        yield port


def run_json(tmp_path: Path, *args: str) -> tuple[int, str, dict]:
    code, out, err = run(*args, "--json", str(tmp_path / "r.json"), "--no-report")
    return code, out + err, json.loads((tmp_path / "r.json").read_text())


def test_a_typo_in_a_templated_mailbox_fails_before_anything_is_sent(loop, tmp_path):
    code, out, report = run_json(tmp_path, ROUNDTRIP, "--var", "rcpt_mailbox=imapp://alice@127.0.0.1/INBOX",
                                 "--var", f"cafile={CA_PATH}")
    assert code == 1, out
    why = (f"mailbox: '{{{{ rcpt_mailbox }}}}' renders to 'imapp://alice@127.0.0.1/INBOX': {URL_KINDS}; "
           "checked before connecting: nothing was sent")
    basic, advanced, bounce = report["plans"][0]["cases"]
    for case, line in ((basic, 70), (advanced, 100)):  # the two cases that read rcpt_mailbox
        assert case["status"] == "failed"
        assert case["reason"] == f"step 8 ({ROUNDTRIP}:{line}): expect_delivery {why}"
        assert case["peer"] is None and case["transcript"] == []  # never connected: no message to clean up
        assert [s["status"] for s in case["steps"]] == ["skipped"] * 7 + ["failed"] + ["skipped"] * (
            len(case["steps"]) - 8)
        assert case["steps"][7]["reason"] == why
    assert f"step 8 at {ROUNDTRIP}:70: expect_delivery\n        why:      {why}\n" in out
    assert bounce["status"] == "passed"  # the case that does not read it runs as ever
    assert "alice-password" not in out + (tmp_path / "r.json").read_text()


def test_a_password_in_a_templated_mailbox_is_refused_and_not_shown(loop, tmp_path):
    code, out, report = run_json(tmp_path, ROUNDTRIP, "--var", "rcpt_mailbox=imap://alice:Hunter2pw@127.0.0.1/INBOX",
                                 "--var", f"cafile={CA_PATH}")
    assert code == 1, out
    assert ("renders to 'imap://alice:***@127.0.0.1/INBOX': a password does not belong in the URL; give it as "
            "password:") in report["plans"][0]["cases"][0]["reason"]
    assert "Hunter2pw" not in out + (tmp_path / "r.json").read_text()


def test_an_environment_variable_is_read_as_the_case_starts(loop, tmp_path, monkeypatch):
    monkeypatch.setenv("SMTPRUN_TEST_MAILBOX", "pop3://alice@127.0.0.1/INBOX")
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, port: 25, timeout: 10}
steps:
  - expect: 220
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: "{{ env.SMTPRUN_TEST_MAILBOX }}"
      password: alice-password
      within: 1
""")
    code, out, report = run_json(tmp_path, plan)
    assert code == 1, out
    assert report["plans"][0]["cases"][0]["reason"] == (
        f"step 3 ({plan}:6): expect_delivery mailbox: '{{{{ env.SMTPRUN_TEST_MAILBOX }}}}' renders to "
        "'pop3://alice@127.0.0.1/INBOX': POP3 has one mailbox, no folders; checked before connecting: nothing was sent")


def test_a_mailbox_from_a_capture_is_read_at_its_step(loop, tmp_path):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, port: 25, timeout: 10}
vars:
  box: imap://alice@127.0.0.1/INBOX
steps:
  - expect: 220
    capture: {box: '^(\\S+)'}
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: "{{ box }}"
      within: 1
""")
    code, out, report = run_json(tmp_path, plan)
    assert code == 1, out
    assert "checked before connecting" not in out
    case = report["plans"][0]["cases"][0]
    assert case["peer"] == "127.0.0.1:25"  # it connected: the capture is known only then
    assert case["steps"][2]["reason"] == f"mailbox 'mail.smtprun.test': {URL_KINDS}"  # the banner's first word


def test_a_folder_for_a_templated_pop3_mailbox_fails_before_anything_is_sent(loop, tmp_path):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, port: 25, timeout: 10}
vars:
  box: imap://alice@127.0.0.1/INBOX
steps:
  - expect: 220
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: "{{ box }}"
      folder: Junk
      within: 1
""")
    code, out, report = run_json(tmp_path, plan, "--var", "box=pop3://alice@127.0.0.1")
    assert code == 1, out
    case = report["plans"][0]["cases"][0]
    assert case["peer"] is None and case["transcript"] == []
    assert case["steps"][2]["reason"] == ("folder: a pop3: mailbox has no folders (IMAP and Maildir do); "
                                          "checked before connecting: nothing was sent")


def listen_plan(mailbox: str) -> str:
    return f"""\
target: {{host: 127.0.0.1, port: 25, timeout: 10}}
vars:
  next_hop: listen://127.0.0.1:2600
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - send: "MAIL FROM:<bob@smtprun.test>"
    expect: 250
  - send: "RCPT TO:<someone@{RELAY_DOMAIN}>"
    expect: 250
  - send: DATA
    expect: 354
  - data: |
      Message-ID: <{{{{ message_id }}}}>
      Subject: templated next hop

      Hello.
    expect: 250
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: "{mailbox}"
      within: 30
"""


@pytest.mark.parametrize("mailbox", ["{{ next_hop }}", "listen://127.0.0.1:{{ next_hop[-4:] }}"])
def test_a_templated_listen_mailbox_starts_its_listener(loop, tmp_path, relay_port, mailbox):
    code, out, report = run_json(tmp_path, write_plan(tmp_path, listen_plan(mailbox)),
                                 "--var", f"next_hop=listen://127.0.0.1:{relay_port}")
    assert code == 0, out
    step = report["plans"][0]["cases"][0]["steps"][-1]
    assert step["details"]["mailbox"] == f"listen://127.0.0.1:{relay_port}"
    assert step["details"]["smtp"]["rcpt_to"] == [f"someone@{RELAY_DOMAIN}"]


def test_a_listen_mailbox_cannot_come_from_a_capture(tmp_path):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, port: 25}
steps:
  - expect: 220
    capture: {port: '(\\d+)'}
  - expect_delivery: {mailbox: "listen://127.0.0.1:{{ port }}"}
""")
    code, out, err = run("validate", plan)
    assert code == 2, out + err
    assert (f"{plan}:5:32: error: a listen:// mailbox cannot use port: smtprun starts listening as the case starts, "
            "before any reply is read\n") in err
    assert "hint: write the address out, or take it from a variable" in err


def test_the_expected_line_shows_rendered_values_and_leaves_out_empty_ones(loop, tmp_path, relay_port):
    code, out, report = run_json(tmp_path, OUTBOUND, "--var", "mta_name=^other\\.example$")
    assert code == 1, out
    expected = "the message arrives, Subject /^outbound test$/, ehlo /^other\\.example$/"
    assert f"        expected: {expected}\n" in out
    step = report["plans"][0]["cases"][0]["steps"][7]
    assert step["expected"] == expected
    assert step["reason"] == "ehlo: /^other\\.example$/ not found in 'mail.smtprun.test'"


def test_the_expected_line_shows_the_listeners_certificate(loop, tmp_path, relay_port):
    if not Path("/etc/smtprun-test/server.key").exists():
        pytest.skip("the test certificate is missing: run scripts/test-env.sh as root")
    code, out, report = run_json(tmp_path, OUTBOUND, "--var", "mta_name=^other\\.example$",
                                 "--var", "listen_cert=/etc/smtprun-test/server.pem",
                                 "--var", "listen_key=/etc/smtprun-test/server.key")
    assert code == 1, out
    assert report["plans"][0]["cases"][0]["steps"][7]["expected"] == (
        "the message arrives, Subject /^outbound test$/, ehlo /^other\\.example$/, "
        "certfile /etc/smtprun-test/server.pem, keyfile /etc/smtprun-test/server.key")


def include_plan(tmp_path: Path, params: str) -> str:
    (tmp_path / "check.yaml").write_text("""\
vars:
  box: imap://alice@127.0.0.1/INBOX
steps:
  - expect_delivery:
      mailbox: "{{ box }}"
      within: 1
""")
    return write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, port: 25, timeout: 10}}
vars:
  rcpt_box: imap://alice@127.0.0.1/INBOX
steps:
  - expect: 220
    capture: {{banner: '^(\\S+)'}}
  - send: QUIT
    expect: 221
  - include: check.yaml
    vars: {{box: "{params}"}}
""")


def test_an_included_mailbox_is_read_early_naming_the_included_file(loop, tmp_path):
    plan = include_plan(tmp_path, "{{ rcpt_box }}")
    code, out, report = run_json(tmp_path, plan, "--var", "rcpt_box=imapp://alice@127.0.0.1/INBOX")
    assert code == 1, out
    case = report["plans"][0]["cases"][0]
    assert case["reason"] == (f"step 3 ({tmp_path / 'check.yaml'}:4): expect_delivery mailbox: '{{{{ box }}}}' "
                              f"renders to 'imapp://alice@127.0.0.1/INBOX': {URL_KINDS}; checked before connecting: "
                              "nothing was sent")
    assert case["transcript"] == []


def test_an_included_mailbox_whose_parameter_reads_a_capture_is_read_at_its_step(loop, tmp_path):
    code, out, report = run_json(tmp_path, include_plan(tmp_path, "{{ banner }}"))
    assert code == 1, out
    case = report["plans"][0]["cases"][0]
    assert case["peer"] == "127.0.0.1:25"
    assert case["steps"][2]["reason"] == f"mailbox 'mail.smtprun.test': {URL_KINDS}"


def test_a_case_whose_mailbox_is_wrong_is_not_tried_again(loop, tmp_path):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, port: 25, timeout: 10}
vars:
  box: imap://alice@127.0.0.1/INBOX
cases:
  - name: retried
    retry: {times: 3, delay: 5}
    steps:
      - expect: 220
      - expect_delivery: {mailbox: "{{ box }}", within: 1}
""")
    t0 = time.monotonic()
    code, out, report = run_json(tmp_path, plan, "--var", "box=imap://127.0.0.1/INBOX")
    assert code == 1, out
    assert time.monotonic() - t0 < 3  # not 3 tries 5s apart: each would say the same
    case = report["plans"][0]["cases"][0]
    assert case["attempts"] == [] and case["notes"] == []
    assert case["reason"].endswith("'imap://127.0.0.1/INBOX': no user (write imap://USER@127.0.0.1/...); "
                                   "checked before connecting: nothing was sent")



class _MaildirOnFirstDelivery:
    """An aiosmtpd handler delivering as Postfix does to a new user: the Maildir is made with the first
    message, a second after the server accepted it (a queue in between)."""

    def __init__(self, maildir: Path, delay: float) -> None:
        self.maildir, self.delay = maildir, delay

    async def handle_DATA(self, server, session, envelope) -> str:
        content = envelope.original_content
        asyncio.get_running_loop().call_later(
            self.delay, lambda: mailbox.Maildir(str(self.maildir), create=True).add(content))
        return "250 2.0.0 Ok: queued"


def test_a_maildir_made_by_the_first_delivery_is_waited_for_not_failed(tmp_path):
    maildir = tmp_path / "home" / "carol" / "Maildir"
    maildir.parent.mkdir(parents=True)  # the user's home exists; the Maildir does not, yet
    port = free_port()
    controller = Controller(_MaildirOnFirstDelivery(maildir, 1.0), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        plan = write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, port: {port}, timeout: 10}}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - send: MAIL FROM:<bob@smtprun.test>
    expect: 250
  - send: RCPT TO:<carol@smtprun.test>
    expect: 250
  - send: DATA
    expect: 354
  - data: |
      Subject: first message ever

      Hello.
    expect: 250
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: maildir:{maildir}
      within: 10
""")
        code, out, report = run_json(tmp_path, plan)
        assert code == 0, out
    finally:
        controller.stop()
    step = report["plans"][0]["cases"][0]["steps"][-1]
    assert step["status"] == "passed" and step["details"]["waited"] >= 0.5, step
