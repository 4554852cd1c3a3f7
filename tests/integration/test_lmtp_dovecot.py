"""target.protocol: lmtp against Dovecot's LMTP (RFC 2033), over TCP and its UNIX socket: an unknown recipient
is refused at RCPT, and after the final dot each accepted recipient gets its own reply, in RCPT order, judged by
the body step and the bare expect: after it; the message lands in both Maildirs."""

from __future__ import annotations

import json
import socket
import uuid

import pytest

from tests.support.cli import run, write_plan
from tests.support.mtas import DOVECOT_LMTP_PORT, DOVECOT_LMTP_SOCKET, POSTFIX, find_delivered, missing

TARGETS = {
    "tcp": f"host: 127.0.0.1, port: {DOVECOT_LMTP_PORT}",
    "unix": f"unix: {DOVECOT_LMTP_SOCKET}",
}


def _lmtp_answers(kind: str) -> None:
    family, address = ((socket.AF_INET, ("127.0.0.1", DOVECOT_LMTP_PORT)) if kind == "tcp"
                       else (socket.AF_UNIX, str(DOVECOT_LMTP_SOCKET)))
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(5)
            probe.connect(address)
            banner = probe.recv(200)
    except OSError:
        banner = b""
    if not banner.startswith(b"220") or b"Dovecot" not in banner:
        missing(f"Dovecot LMTP does not answer ({kind}): run scripts/test-env.sh as root")


def _plan(kind: str, message_id: str) -> str:
    return f"""\
target: {{{TARGETS[kind]}, protocol: lmtp, timeout: 10}}
steps:
  - expect: 220
  - send: LHLO client.smtprun.test
    expect: 250
  - send: "MAIL FROM:<lmtp@smtprun.test>"
    expect: 250
  - send: "RCPT TO:<alice@smtprun.test>"
    expect: 250
  - send: "RCPT TO:<nobody@smtprun.test>"
    expect: {{code: 550, enhanced: "5.1.1"}}
  - send: "RCPT TO:<bob@smtprun.test>"
    expect: 250
  - send: DATA
    expect: 354
  - data: "Message-ID: <{message_id}>\\nSubject: by LMTP\\n\\nHello.\\n"
    expect: {{code: 250, text: "<alice@smtprun.test>"}}
  - expect: {{code: 250, text: "<bob@smtprun.test>"}}
  - send: QUIT
    expect: 221
"""


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_one_reply_per_accepted_recipient(tmp_path, kind):
    _lmtp_answers(kind)
    message_id = f"{uuid.uuid4().hex}@lmtp.smtprun.test"
    code, out, err = run(write_plan(tmp_path, _plan(kind, message_id)), "--json", str(tmp_path / "r.json"),
                         "--no-report")
    assert code == 0, out + err
    for user in ("alice", "bob"):
        assert find_delivered(POSTFIX, user, message_id) is not None, f"nothing arrived in {user}'s Maildir"
    steps = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"][0]["steps"]
    assert "<alice@smtprun.test>" in steps[7]["reply"]["lines"][0]
    assert "<bob@smtprun.test>" in steps[8]["reply"]["lines"][0]


def test_expecting_one_reply_where_lmtp_gives_two_fails_saying_so(tmp_path):
    _lmtp_answers("tcp")
    plan = _plan("tcp", f"{uuid.uuid4().hex}@lmtp.smtprun.test").replace(
        '  - expect: {code: 250, text: "<bob@smtprun.test>"}\n', "")
    code, out, _ = run(write_plan(tmp_path, plan), "--no-report")
    assert code == 1
    assert "was never read" in out and "<bob@smtprun.test>" in out



PIPELINED = """\
target: {{{target}, protocol: lmtp, timeout: 10}}
steps:
  - expect: 220
  - send: LHLO client.smtprun.test
    expect: {{code: 250, keywords: [PIPELINING]}}
  - pipeline:
      - {{send: "MAIL FROM:<lmtp@smtprun.test>", expect: 250}}
      - {{send: "RCPT TO:<alice@smtprun.test>", expect: 250}}
      - {{send: "RCPT TO:<bob@smtprun.test>", expect: 250}}
      - {{send: DATA, expect: 354}}
  - data: "Message-ID: <{message_id}>\\nSubject: pipelined LMTP\\n\\nHello.\\n"
    expect: {{code: 250, text: "<alice@smtprun.test>"}}
{second}  - send: QUIT
    expect: 221
"""


def test_pipelined_recipients_count_too(tmp_path):
    _lmtp_answers("unix")
    message_id = f"{uuid.uuid4().hex}@lmtp.smtprun.test"
    second = '  - expect: {code: 250, text: "<bob@smtprun.test>"}\n'
    plan = PIPELINED.format(target=TARGETS["unix"], message_id=message_id, second=second)
    code, out, err = run(write_plan(tmp_path, plan), "--no-report")
    assert code == 0, out + err
    assert find_delivered(POSTFIX, "bob", message_id) is not None, "nothing arrived in bob's Maildir"


def test_a_pipelined_recipients_reply_left_unread_is_named(tmp_path):
    _lmtp_answers("unix")
    plan = PIPELINED.format(target=TARGETS["unix"], message_id=f"{uuid.uuid4().hex}@lmtp.smtprun.test",
                            second="")
    code, out, _ = run(write_plan(tmp_path, plan), "--no-report")
    assert code == 1
    assert "was never read" in out and "<bob@smtprun.test>" in out
