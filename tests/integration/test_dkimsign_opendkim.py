"""`dkim:` beside `data:` and `data_file:` (runner/run/dkimsign.py) through the real mail loop around Postfix
(scripts/env/mailbox.sh): the body signed here is verified by the test OpenDKIM (dkim=pass in the
Authentication-Results it writes) and by smtprun's own check of the delivered copy; then `expect_dns: {dkim: {}}`
checks the key that copy was signed with (runner/run/senderposture.py), published by a fixture dnsmasq."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.mailplans import mail_step, run_json
from tests.support.mtas import CERT_DIR, DKIM, DOVECOT, POSTFIX, missing, require_dovecot, require_smtp

pytestmark = pytest.mark.postfix

AUTHSERV_ID = "mail.smtprun.test"  # scripts/env/opendkim.conf: AuthservID
KEY = CERT_DIR / "dkim" / f"{DKIM.selector}.private"
# LF line ends, a bare CR (sent as a line end), a line that starts with a dot (stuffed on the wire), no
# Message-ID (the case's is added, then the whole is signed): what the server stores differs from the plan's text,
# and the signature still holds
BODY = f"From: dkim@{DKIM.domain}\nTo: alice@smtprun.test\nSubject: signed data\n\n.a dot line\rthe end\n"
QUOTED = '"' + BODY.replace("\n", "\\n").replace("\r", "\\r") + '"'  # YAML's double-quoted form


@pytest.fixture(scope="module")
def loop() -> None:
    require_smtp(POSTFIX)
    require_dovecot(DOVECOT)
    if not KEY.exists():
        missing(f"{KEY} missing: run scripts/test-env.sh as root")


def plan(body_step: str, after: str = "", nameserver: str = "") -> str:
    # from 127.0.0.2, outside OpenDKIM's InternalHosts: it verifies the signature instead of signing
    dns = f', nameserver: "{nameserver}"' if nameserver else ""
    return f"""\
target: {{host: 127.0.0.1, port: 25, timeout: 10, source: 127.0.0.2{dns}}}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - send: "MAIL FROM:<dkim@{DKIM.domain}>"
    expect: 250
  - send: "RCPT TO:<alice@smtprun.test>"
    expect: 250
  - send: DATA
    expect: 354
{body_step}
    dkim: {{domain: {DKIM.domain}, selector: {DKIM.selector}, key: {KEY}}}
    expect: 250
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: maildir:/home/alice/Maildir
      within: 15
      authentication_results: {{authserv_id: {AUTHSERV_ID}, dkim: pass}}
      delete: true
{after}"""


def opendkim_verdict(report: dict) -> str:
    step = mail_step(report)
    written = [v for name, v in step["details"]["headers"] if name.lower() == "authentication-results"]
    assert written, step["details"]["headers"]
    return written[0]


def test_a_signed_data_body_gets_dkim_pass_from_opendkim_and_its_key_is_checked(loop, tmp_path: Path,
                                                                                 dnsmasq_factory) -> None:
    dns = dnsmasq_factory(DKIM.dnsmasq_option())
    after = "  - expect_dns: {domain: smtprun.test, dkim: {}}\n"  # no selector: the delivered copy's
    code, out, report = run_json(tmp_path, plan(f"  - data: {QUOTED}", after, f"{dns.host}:{dns.port}"), "-v")
    assert code == 0, out
    assert opendkim_verdict(report).startswith(f"{AUTHSERV_ID}; dkim=pass (2048-bit key) header.d={DKIM.domain} ")
    assert mail_step(report)["details"]["dkim"]["result"] == "pass"  # smtprun's own check agrees
    steps = report["plans"][0]["cases"][0]["steps"]
    assert steps[5]["sent"].endswith(f"Message-ID added, DKIM-signed d={DKIM.domain} s={DKIM.selector})")
    assert f"DKIM-signed: d={DKIM.domain} s={DKIM.selector}, over the " in out
    facts = mail_step(report, "expect_dns")["details"]["dkim"]
    assert facts["selectors_from"] == "delivered copy"
    assert [(k["name"], k["bits"], k["errors"]) for k in facts["keys"]] == [(DKIM.record_name, 2048, [])]


def test_a_signed_data_file_gets_dkim_pass_from_opendkim(loop, tmp_path: Path) -> None:
    (tmp_path / "m.eml").write_bytes(BODY.encode())
    code, out, report = run_json(tmp_path, plan("  - data_file: m.eml"))
    assert code == 0, out
    assert opendkim_verdict(report).startswith(f"{AUTHSERV_ID}; dkim=pass (2048-bit key) header.d={DKIM.domain} ")


def test_without_a_signed_copy_read_no_key_is_checked_and_that_is_a_warning(loop, tmp_path: Path,
                                                                             dnsmasq_factory) -> None:
    dns = dnsmasq_factory(DKIM.dnsmasq_option())
    text = plan(f"  - data: {QUOTED}", nameserver=f"{dns.host}:{dns.port}")
    text = text.replace("  - expect_delivery:", "  - expect_dns: {domain: smtprun.test, dkim: {}}\n"
                                                "  - expect_delivery:")  # before the copy is read
    code, out, report = run_json(tmp_path, text)
    assert code == 0, out
    facts = mail_step(report, "expect_dns")["details"]["dkim"]
    assert (facts["selectors_from"], facts["keys"]) == ("none", [])
    assert facts["warnings"] == ["no DKIM selector named: no key checked (selectors cannot be listed from DNS; "
                                 "name them with dkim.selector)"]
