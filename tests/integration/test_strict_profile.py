"""The embedded server's strict profile refuses envelopes without angle brackets, as a hardened Postfix does."""

from __future__ import annotations

import io

import pytest

from runner.cli import main

PLAN = """\
target: {{host: 127.0.0.1, port: 25}}
steps:
  - expect: 220
  - send: EHLO test.com
    expect: 250
  - send: "{mail}"
    expect: 250
  - send: "{rcpt}"
    expect: 250
  - send: QUIT
    expect: 221
"""


def _run(tmp_path, profile: str, mail: str, rcpt: str) -> tuple[int, str]:
    path = tmp_path / "seed.yaml"
    path.write_text(PLAN.format(mail=mail, rcpt=rcpt))
    out, err = io.StringIO(), io.StringIO()
    code = main(["--embedded", "--profile", profile, str(path), "--no-report"], out=out, err=err)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize(("mail", "rcpt", "refused"), [
    ("MAIL FROM:Admin@test.com", "RCPT TO:<alice@smtprun.test>", "501 5.1.7 Bad sender address syntax"),
    ("MAIL FROM:<admin@test.com>", "RCPT TO: Utilisateur@smtprun.test", "501 5.1.3 Bad recipient address syntax"),
])
def test_the_strict_profile_refuses_bare_addresses(tmp_path, mail, rcpt, refused):
    code, output = _run(tmp_path, "strict", mail, rcpt)
    assert code == 1
    assert f"got:      {refused}" in output


def test_the_strict_profile_takes_bracketed_addresses_and_postfix_takes_bare_ones(tmp_path):
    assert _run(tmp_path, "strict", "MAIL FROM:<admin@test.com>", "RCPT TO: <alice@smtprun.test>")[0] == 0
    assert _run(tmp_path, "postfix", "MAIL FROM:Admin@test.com", "RCPT TO: Utilisateur@smtprun.test")[0] == 0
