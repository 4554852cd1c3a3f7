"""A delivery report that is not multipart/report: OpenSMTPD 7.4 sends its "delivered" notice for
NOTIFY=SUCCESS as multipart/mixed with a message/delivery-status part. expect_dsn finds it, judges it,
and says it is not conformant."""

from __future__ import annotations

import json

from tests.support.cli import run, write_plan
from tests.support.mtas import OPENSMTPD, require_smtp

PLAN = f"""\
target: {{host: 127.0.0.1, port: {OPENSMTPD.port}, timeout: 10}}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: {{code: 250, keywords: [DSN]}}
  - send: "MAIL FROM:<bob@smtprun.test> RET=HDRS ENVID={{{{ message_id }}}}"
    expect: 250
  - send: "RCPT TO:<alice@smtprun.test> NOTIFY=SUCCESS"
    expect: 250
  - send: DATA
    expect: 354
  - data: |
      Message-ID: <{{{{ message_id }}}}>
      From: bob@smtprun.test
      To: alice@smtprun.test
      Subject: receipt from OpenSMTPD

      Hello.
    expect: 250
  - send: QUIT
    expect: 221
  - expect_dsn:
      mailbox: maildir:{OPENSMTPD.root}/home/bob/Maildir
      within: 20
      action: delivered
      recipient: alice@smtprun\\.test
      delete: true
  - expect_delivery:
      mailbox: maildir:{OPENSMTPD.root}/home/alice/Maildir
      within: 20
      delete: true
"""


def test_a_multipart_mixed_delivery_report_is_found_and_said_to_be_nonconformant(tmp_path):
    require_smtp(OPENSMTPD)
    code, out, err = run(write_plan(tmp_path, PLAN), "--json", str(tmp_path / "r.json"), "--no-report")
    case = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"][0]
    assert code == 0, out + err
    step = next(s for s in case["steps"] if s["action"] == "expect_dsn")
    dsn = step["details"]["dsn"]
    assert dsn["recipients"][0]["action"] == "delivered"
    assert dsn["nonconformant"].startswith("Content-Type is multipart/mixed, not multipart/report")
    assert any(e["data"].startswith("the delivery report is not conformant: Content-Type is multipart/mixed")
               for e in case["transcript"])
