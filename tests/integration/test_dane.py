"""DANE (`expect_tls: {tlsa: ...}`, runner/run/dane.py, runner/net/dane.py) against the test Postfix (127.0.0.1:25,
STARTTLS), reached through the MX records of the DNSSEC test zones (tests/support/dnssec.py): NSD serves them,
unbound validates them, and the TLSA records are made from the Postfix certificate by scripts/env/dnssec.sh."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import run, write_plan
from tests.support.dnssec import BOGUS, INSECURE, SECURE, require_dnssec
from tests.support.mtas import POSTFIX, require_smtp


def dane(tmp_path, domain: str, tlsa: str = "match", step: str = "expect_tls") -> tuple[int, dict, str]:
    """A case that reaches Postfix as MX of `domain`, starts TLS and checks DANE: exit status, the step, stdout."""
    nameserver = require_dnssec()
    require_smtp(POSTFIX)
    plan = write_plan(tmp_path, f"""\
target: {{mx: {domain}, port: 25, timeout: 5, nameserver: "{nameserver}"}}
cases:
  - name: dane
    steps:
      - expect: 220
      - send: EHLO client.test
        expect: 250
      - starttls: {{verify: false}}
      - {step}: {{tlsa: {tlsa}}}
""")
    report = tmp_path / "out.json"
    code, out, _ = run("-v", "--json", str(report), plan)
    steps = json.loads(report.read_text())["plans"][0]["cases"][0]["steps"]
    return code, next(s for s in steps if "tlsa" in (s.get("details") or {})), out


def test_matching_dane_ee_with_a_ta_record_beside_it(tmp_path):
    code, step, out = dane(tmp_path, SECURE)
    facts = step["details"]["tlsa"]
    assert code == 0, out
    assert facts["dnssec"] == "secure" and facts["name"] == f"_25._tcp.mx.{SECURE}"
    assert [m.split(" (")[0][:6] for m in facts["matched"]] == ["3 1 1 "]
    # Postfix sends only its own certificate: the 2 1 1 of the CA cannot take over after a key change
    assert facts["rollover"] is False
    assert "the server does not send its CA certificate" in facts["warnings"][0]
    assert "DANE warning: no rollover" in out


def test_current_and_next_key_is_a_rollover(tmp_path):
    code, step, out = dane(tmp_path, f"next.{SECURE}", "{rollover: required}")
    assert code == 0, out
    assert step["details"]["tlsa"]["rollover"] is True and step["details"]["tlsa"]["warnings"] == []
    assert len(step["details"]["tlsa"]["unmatched"]) == 1  # the next key: published, not yet in use


def test_a_single_record_warns_or_fails_when_a_rollover_is_required(tmp_path):
    code, step, out = dane(tmp_path, f"ee.{SECURE}")
    assert code == 0, out
    assert step["details"]["tlsa"]["warnings"][0].startswith("no rollover: only the current key is published")
    code, step, _ = dane(tmp_path, f"ee.{SECURE}", "{rollover: required}")
    assert code == 1 and "no rollover" in step["reason"] and "RFC 7671 §8.1" in step["reason"]


def test_every_selector_and_matching_type(tmp_path):
    code, step, out = dane(tmp_path, f"types.{SECURE}")
    assert code == 0, out
    assert sorted(m[:5] for m in step["details"]["tlsa"]["matched"]) == ["3 0 0", "3 0 2", "3 1 0", "3 1 2"]


def test_a_record_of_another_key_fails(tmp_path):
    code, step, _ = dane(tmp_path, f"wrong.{SECURE}")
    assert code == 1
    assert "no usable TLSA record matches the chain the server sends" in step["reason"]
    assert "(DANE-EE) does not match the server's certificate" in step["reason"]


def test_dane_ta_needs_the_ca_certificate_in_the_chain_sent(tmp_path):
    code, step, _ = dane(tmp_path, f"ta.{SECURE}")
    assert code == 1
    assert "the server sends only its own certificate, and a DANE-TA record needs the issuing certificate" \
        in step["reason"]


@pytest.mark.parametrize(("domain", "status", "words"), [
    (INSECURE, "insecure", "not DNSSEC-signed (insecure): DANE without DNSSEC is not usable (RFC 7672 §2.2)"),
    (f"tampered.{SECURE}", "bogus", "EDE 6 DNSSEC Bogus"),
])
def test_matching_records_that_are_not_secure_are_not_usable(tmp_path, domain, status, words):
    code, step, _ = dane(tmp_path, domain)
    facts = step["details"]["tlsa"]
    assert code == 1 and facts["dnssec"] == status and words in step["reason"]
    if status == "insecure":  # it matches, and says so, but a sender does not use it
        assert facts["matched"] and facts["warnings"] == []


def test_no_tlsa_record_is_said_as_a_signed_denial(tmp_path):
    code, step, _ = dane(tmp_path, f"none.{SECURE}")
    assert code == 1
    assert step["reason"] == (f"no TLSA record at _25._tcp.mx.none.{SECURE} (a signed denial): "
                              "the host does not publish DANE")


def test_a_bogus_domain_is_not_reached_at_all(tmp_path):
    nameserver = require_dnssec()
    plan = write_plan(tmp_path, f"""\
target: {{mx: {BOGUS}, port: 25, timeout: 5, nameserver: "{nameserver}"}}
cases:
  - name: dane
    steps:
      - expect: 220
""")
    code, out, _ = run(plan)
    assert code == 1 and f"SERVFAIL for {BOGUS} MX" in out


@pytest.mark.parametrize("domain", [SECURE, f"wrong.{SECURE}", INSECURE, f"tampered.{SECURE}", f"none.{SECURE}"])
def test_expect_dns_tlsa_is_judged_as_expect_tls_judges_it(tmp_path, domain):
    """The older `expect_dns: {tlsa: match}` runs the same DANE check: never a pass where expect_tls fails."""
    tls_code, tls_step, _ = dane(tmp_path, domain)
    dns_code, dns_step, out = dane(tmp_path, domain, step="expect_dns")
    assert dns_code == tls_code, out
    assert dns_step["details"]["tlsa"]["matched"] == tls_step["details"]["tlsa"]["matched"]
    assert dns_step["details"]["tlsa"]["dnssec"] == tls_step["details"]["tlsa"]["dnssec"]
    if tls_code:
        assert tls_step["reason"] in dns_step["reason"]
