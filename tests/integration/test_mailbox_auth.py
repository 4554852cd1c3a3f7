"""Authentication-Results written by a real verifier: OpenDKIM, Postfix's milter, verifies the mail of
clients outside its InternalHosts (127.0.0.1), so these cases connect from 127.0.0.2 (`target.source`).
The messages are DKIM-signed here with the test key (d=signed.smtprun.test, s=test) over From, To and
Subject only, so the case's own Message-ID can go on top."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.mailplans import mail_step, run_json
from tests.support.mtas import CERT_DIR, DKIM, DOVECOT, POSTFIX, missing, require_dovecot, require_smtp

pytestmark = pytest.mark.postfix

AUTHSERV_ID = "mail.smtprun.test"  # scripts/env/opendkim.conf: AuthservID
KEY = CERT_DIR / "dkim" / f"{DKIM.selector}.private"
MESSAGE = (f"From: dkim@{DKIM.domain}\r\nTo: alice@smtprun.test\r\nSubject: signed by the test\r\n\r\n"
           "Signed by the test itself.\r\n").encode()


@pytest.fixture(scope="module")
def loop() -> None:
    require_smtp(POSTFIX)
    require_dovecot(DOVECOT)
    if not KEY.exists():
        missing(f"{KEY} missing: run scripts/test-env.sh as root")


def signed(message: bytes = MESSAGE) -> bytes:
    import dkim

    return dkim.sign(message, DKIM.selector.encode(), DKIM.domain.encode(), KEY.read_bytes(),
                     include_headers=[b"from", b"to", b"subject"], canonicalize=(b"relaxed", b"simple")) + message


def plan(message: bytes, check: str, source: str = "127.0.0.2") -> str:
    text = ("Message-ID: <{{ message_id }}>\r\n" + message.decode()).replace("\r\n", "\n")
    body = "".join(f"      {line}\n" for line in text.splitlines())
    return f"""\
target: {{host: 127.0.0.1, port: 25, timeout: 10, source: {source}}}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - send: MAIL FROM:<dkim@{DKIM.domain}>
    expect: 250
  - send: RCPT TO:<alice@smtprun.test>
    expect: 250
  - send: DATA
    expect: 354
  - data: |
{body}    expect: 250
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: maildir:/home/alice/Maildir
      within: 15
      authentication_results:
{check}      delete: true
"""


def results_written(step: dict) -> list[str]:
    return [value for name, value in step["details"]["headers"] if name.lower() == "authentication-results"]


def test_a_signed_message_from_outside_gets_dkim_pass_from_opendkim(loop, tmp_path: Path) -> None:
    check = f"        authserv_id: {AUTHSERV_ID}\n        dkim: pass\n"
    code, out, report = run_json(tmp_path, plan(signed(), check))
    assert code == 0, out
    written = results_written(mail_step(report))
    assert len(written) == 1 and written[0].startswith(f"{AUTHSERV_ID}; dkim=pass (2048-bit key) "
                                                       f"header.d={DKIM.domain} "), written
    assert report["plans"][0]["cases"][0]["source"] == "127.0.0.2"
    assert mail_step(report)["expected"] == (f"the message arrives, Authentication-Results from {AUTHSERV_ID}: "
                                             "dkim=pass, delete true")


def test_an_authserv_id_given_by_a_template_and_in_another_case(loop, tmp_path: Path) -> None:
    check = "        authserv_id: \"{{ verifier }}\"\n        dkim: pass\n"
    text = plan(signed(), check).replace("steps:\n", "vars: {verifier: MAIL.smtprun.TEST}\nsteps:\n", 1)
    code, out, _report = run_json(tmp_path, text)
    assert code == 0, out


def test_a_header_altered_after_signing_gets_dkim_fail(loop, tmp_path: Path) -> None:
    tampered = signed().replace(b"Subject: signed by the test", b"Subject: altered after signing")
    check = f"        authserv_id: {AUTHSERV_ID}\n        dkim: pass\n"
    code, _out, report = run_json(tmp_path, plan(tampered, check))
    assert code == 1
    step = mail_step(report)
    assert step["reason"].startswith(f"Authentication-Results: {AUTHSERV_ID} says dkim=fail "
                                     '(reason="signature verification failed" '), step["reason"]
    assert step["reason"].endswith("expected dkim=pass")
    check = f"        authserv_id: {AUTHSERV_ID}\n        dkim: fail\n"
    code, out, _report = run_json(tmp_path, plan(tampered, check))
    assert code == 0, out


def test_an_unsigned_message_gets_no_dkim_result(loop, tmp_path: Path) -> None:
    # OpenDKIM writes no Authentication-Results for an unsigned message (AlwaysAddARHeader is off)
    unsigned = MESSAGE.replace(b"Subject: signed by the test", b"Subject: not signed")
    check = f"        authserv_id: {AUTHSERV_ID}\n        dkim: none\n"
    code, _out, report = run_json(tmp_path, plan(unsigned, check))
    assert code == 1
    step = mail_step(report)
    assert results_written(step) == []
    assert step["reason"] == (f"Authentication-Results: no dkim result from {AUTHSERV_ID}; "
                              "the delivered copy has no Authentication-Results field from it")


def test_results_the_sender_wrote_are_not_trusted(loop, tmp_path: Path) -> None:
    # claiming OpenDKIM's own authserv-id: OpenDKIM removes the field and writes its own verdict
    forged = b"Authentication-Results: " + AUTHSERV_ID.encode() + b"; dkim=pass header.d=" + DKIM.domain.encode()
    tampered = signed().replace(b"Subject: signed by the test", b"Subject: altered after signing")
    check = f"        authserv_id: {AUTHSERV_ID}\n        dkim: pass\n"
    code, _out, report = run_json(tmp_path, plan(forged + b"\r\n" + tampered, check))
    assert code == 1
    step = mail_step(report)
    assert [w.split(";")[1].split()[0] for w in results_written(step)] == ["dkim=fail"]
    assert f"{AUTHSERV_ID} says dkim=fail" in step["reason"]

    # under another authserv-id: kept, shown, and not believed
    forged = b"Authentication-Results: mx.forged.example; dkim=pass header.d=" + DKIM.domain.encode()
    unsigned = MESSAGE.replace(b"Subject: signed by the test", b"Subject: forged results")
    code, _out, report = run_json(tmp_path, plan(forged + b"\r\n" + unsigned, check))
    assert code == 1
    step = mail_step(report)
    assert step["reason"] == (f"Authentication-Results: no dkim result from {AUTHSERV_ID}; "
                              "fields from mx.forged.example are not trusted (RFC 8601 §5)")
    assert {r["authserv_id"] for r in step["details"]["authentication_results"]} == {"mx.forged.example"}


def test_from_an_internal_address_opendkim_signs_and_writes_no_results(loop, tmp_path: Path) -> None:
    check = f"        authserv_id: {AUTHSERV_ID}\n        dkim: pass\n"
    code, _out, report = run_json(tmp_path, plan(MESSAGE, check, source="127.0.0.1"))
    assert code == 1
    step = mail_step(report)
    assert any(name == "DKIM-Signature" for name, _ in step["details"]["headers"])
    assert step["reason"].startswith(f"Authentication-Results: no dkim result from {AUTHSERV_ID}")
