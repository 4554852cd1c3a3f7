"""Plans the mailbox tests share: one message through the test Postfix, then the checks a test adds; and the
run of such a plan with its JSON report, and the mailbox step in it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run, write_plan

__all__ = ["mail_step", "run_json", "send_plan"]


def send_plan(check: str, *, rcpt: str = "alice@smtprun.test", sender: str = "bob@smtprun.test",
              mail_params: str = "", rcpt_params: str = "", headers: str = "", extra: str = "") -> str:
    """One case through Postfix: a message with the case's Message-ID, then `check` (YAML steps)."""
    return f"""\
target: {{host: 127.0.0.1, port: 25, timeout: 10{extra}}}
vars:
  helo: client.smtprun.test
steps:
  - expect: 220
  - send: "EHLO {{{{ helo }}}}"
    expect: 250
  - send: "MAIL FROM:<{sender}>{mail_params}"
    expect: 250
  - send: "RCPT TO:<{rcpt}>{rcpt_params}"
    expect: 250
  - send: DATA
    expect: 354
  - data: |
      Message-ID: <{{{{ message_id }}}}>
      From: {sender}
      To: {rcpt}
      Subject: closed loop test
{headers}
      Hello from the closed-loop test.
    expect: 250
  - send: QUIT
    expect: 221
{check}"""


def run_json(tmp_path: Path, plan_text: str, *args: str) -> tuple[int, str, dict]:
    """smtprun on the plan with --json: (exit status, what it printed, the JSON report)."""
    plan = write_plan(tmp_path, plan_text)
    code, out, err = run(plan, "--json", str(tmp_path / "r.json"), "--no-report", *args)
    assert not err or code != 0, err
    return code, out + err, json.loads((tmp_path / "r.json").read_text())


def mail_step(report: dict, action: str = "expect_delivery") -> dict:
    """The first case's first step of this action, as the JSON report has it."""
    return next(s for s in report["plans"][0]["cases"][0]["steps"] if s["action"] == action)
