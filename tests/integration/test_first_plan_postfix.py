"""A mail admin's first plans against the real Postfix: Microsoft KB 153119 typed literally (a reply left
unread), and a message body from a file found again in the Maildir Postfix delivers to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run, write_plan
from tests.support.mtas import DISCARD_DOMAIN, POSTFIX, require_smtp

pytestmark = pytest.mark.postfix

ENVELOPE = """\
target: {{host: 127.0.0.1, port: 25, timeout: 10}}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - send: "MAIL FROM:<bob@smtprun.test>"
    expect: 250
  - send: "RCPT TO:<{rcpt}>"
    expect: 250
  - send: DATA
    expect: 354
"""


def run_json(tmp_path: Path, text: str) -> tuple[int, str, dict]:
    plan = write_plan(tmp_path, text)
    code, out, err = run(plan, "--json", str(tmp_path / "r.json"), "--no-report")
    return code, out + err, json.loads((tmp_path / "r.json").read_text())


def test_kb_153119_typed_literally_fails_at_the_step_judged_on_an_unread_reply(tmp_path: Path) -> None:
    """Before: PASS, the "." judged on the message's 250 and QUIT on Postfix's answer to the stray "."
    ("221 2.7.0 Error: I can break rules, too. Goodbye.", logged as "non-SMTP command")."""
    require_smtp(POSTFIX)
    code, out, report = run_json(tmp_path, ENVELOPE.format(rcpt=f"kb153119@{DISCARD_DOMAIN}") + """\
  - data: |
      Subject: message test

      This is a test message.
  - send: "."
    expect: 250
  - send: QUIT
    expect: 221
""")
    assert code == 1, out
    case = report["plans"][0]["cases"][0]
    step = case["steps"][6]
    assert (step["index"], step["status"], step["sent"]) == (7, "failed", ".")
    assert step["reason"].startswith("the reply to step 6 (message body (47 bytes), line 12) was never read: "
                                     "250 2.0.0 Ok: queued as ")
    assert "step 7 would have been judged on it, not on the reply to its own command" in step["reason"]
    sent = [e["data"] for e in case["transcript"] if e["dir"] == "C"]
    assert sent[-2:] == ["Subject: message test\\r\\n\\r\\nThis is a test message.\\r\\n.\\r\\n", "QUIT\\r\\n"]
    received = [e["data"] for e in case["transcript"] if e["dir"] == "S"]
    assert received[-2].startswith("250 2.0.0 Ok: queued as ")  # read before anything else was sent
    assert received[-1] == "221 2.0.0 Bye\\r\\n"  # an ordinary goodbye, not "I can break rules, too"


def test_a_data_file_without_message_id_is_found_in_the_maildir(tmp_path: Path) -> None:
    """Before: the file went out without a Message-ID and expect_delivery failed: no message arrived."""
    require_smtp(POSTFIX)
    (tmp_path / "body.eml").write_text("From: bob@smtprun.test\nTo: alice@smtprun.test\n"
                                       "Subject: data_file closed loop\n\nA body from a file.\n")
    code, out, report = run_json(tmp_path, ENVELOPE.format(rcpt="alice@smtprun.test") + """\
  - data_file: body.eml
    expect: 250
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: maildir:/home/alice/Maildir
      within: 15
      headers: {Subject: "^data_file closed loop$"}
      body: A body from a file
      delete: true
""")
    assert code == 0, out
    steps = report["plans"][0]["cases"][0]["steps"]
    assert steps[5]["sent"].endswith("body.eml, Message-ID added")
    details = steps[-1]["details"]
    assert details["found"] and details["deleted"]
    message_id = next(value for name, value in details["headers"] if name.lower() == "message-id")
    assert message_id.startswith("<smtprun.")
