"""target.unix: a plan reaching an SMTP server on a UNIX-domain socket (aiosmtpd serving on one, in-process),
and what a user sees when nothing listens there."""

from __future__ import annotations

import json

import pytest
from aiosmtpd.controller import UnixSocketController

from tests.support.cli import run, write_plan


class Keep:
    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls it by this name
        self.envelopes.append(envelope)
        return "250 2.0.0 kept"


@pytest.fixture
def unix_server(tmp_path):
    handler = Keep()
    controller = UnixSocketController(handler, unix_socket=str(tmp_path / "smtp.sock"))
    controller.start()
    yield controller, handler
    controller.stop()


PLAN = """\
target: {{unix: "{path}", timeout: 10}}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - send: "MAIL FROM:<a@smtprun.test>"
    expect: 250
  - send: "RCPT TO:<b@smtprun.test>"
    expect: 250
  - send: DATA
    expect: 354
  - data: "Subject: over a UNIX socket\\n\\nHello.\\n"
    expect: 250
  - send: QUIT
    expect: 221
"""


def test_a_plan_delivers_over_a_unix_socket(unix_server, tmp_path):
    _, handler = unix_server
    path = tmp_path / "smtp.sock"
    code, out, err = run(write_plan(tmp_path, PLAN.format(path=path)), "--json", str(tmp_path / "r.json"),
                         "--no-report")
    assert code == 0, out + err
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == ["b@smtprun.test"]
    assert b"Subject: over a UNIX socket" in envelope.content
    case = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"][0]
    assert case["target"] == f"unix:{path}"
    assert f"connected to unix:{path}" in [e["data"] for e in case["transcript"] if e["dir"] == "*"]


def test_nothing_listening_there_is_said_plainly(tmp_path):
    path = tmp_path / "absent.sock"
    code, out, _ = run(write_plan(tmp_path, PLAN.format(path=path)), "--no-report")
    assert code == 1
    assert f"cannot connect to unix:{path}: No such file or directory" in out
