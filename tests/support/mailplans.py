"""Plans the mailbox tests share: one message through the test Postfix, then the checks a test adds."""

from __future__ import annotations

__all__ = ["send_plan"]


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
