"""DNSSEC status (runner/net/dnssec.py; `expect_dns: {dnssec: ...}`, runner/run/dnssecstep.py) against the signed,
bogus and unsigned test zones that NSD serves and unbound validates (tests/support/dnssec.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from runner.net.dnssec import validated
from runner.net.resolver import DnsError, ResolverConfig
from tests.support.cli import run, write_plan
from tests.support.dnssec import AUTHORITATIVE, BOGUS, INSECURE, RESOLVER, SECURE, require_dnssec
from tests.support.mtas import POSTFIX, require_smtp


def ask(name: str, rdtype: str, server: tuple[str, int] = RESOLVER, timeout: float = 3.0):
    require_dnssec()
    return asyncio.run(validated(name, rdtype, ResolverConfig((server,), timeout)))


@pytest.mark.parametrize(("name", "rdtype", "status", "rcode"), [
    (SECURE, "MX", "secure", "NOERROR"),
    (f"mx.{SECURE}", "A", "secure", "NOERROR"),
    (f"_25._tcp.mx.{SECURE}", "TLSA", "secure", "NOERROR"),
    (f"nothing.{SECURE}", "A", "secure", "NXDOMAIN"),  # a denial proven by NSEC
    (INSECURE, "MX", "insecure", "NOERROR"),
    (f"_25._tcp.mx.{INSECURE}", "TLSA", "insecure", "NOERROR"),
    (BOGUS, "MX", "bogus", "SERVFAIL"),
    (f"_25._tcp.mx.tampered.{SECURE}", "TLSA", "bogus", "SERVFAIL"),
])
def test_each_zone_as_the_validating_resolver_says_it(name, rdtype, status, rcode):
    answer = ask(name, rdtype)
    assert (answer.status, answer.rcode) == (status, rcode), answer.reason
    assert answer.server == "127.0.0.1:5311" and answer.local


def test_bogus_is_said_with_the_resolvers_extended_error():
    answer = ask(f"mx.{BOGUS}", "A")
    assert answer.status == "bogus"
    assert "EDE 7 Signature Expired" in answer.reason or "EDE 6 DNSSEC Bogus" in answer.reason


def test_records_come_with_their_status():
    answer = ask(f"_25._tcp.mx.{SECURE}", "TLSA")
    assert sorted((r.usage, r.selector, r.mtype) for r in answer.records) == [(2, 1, 1), (3, 1, 1)]


def test_an_authoritative_server_gives_no_verdict():
    answer = ask(SECURE, "MX", AUTHORITATIVE)
    assert answer.status == "unknown"
    assert "did not validate it (no AD bit): it is not a validating resolver" in answer.reason


def test_no_answer_is_a_dns_error_naming_the_query():
    require_dnssec()
    with pytest.raises(DnsError, match=f"no name server answered {SECURE} MX with DNSSEC"):
        asyncio.run(validated(SECURE, "MX", ResolverConfig((("127.0.0.1", 9),), 0.5)))


def dnssec_step(tmp_path, target: str, check: str, nameserver: str = "") -> tuple[int, dict, str]:
    nameserver = nameserver or require_dnssec()
    require_smtp(POSTFIX)
    plan = write_plan(tmp_path, f"""\
target: {{{target}, port: 25, timeout: 5, nameserver: "{nameserver}"}}
cases:
  - name: dnssec
    steps:
      - expect: 220
      - expect_dns: {{{check}}}
""")
    report = tmp_path / "out.json"
    code, out, _ = run("-v", "--json", str(report), plan)
    steps = json.loads(report.read_text())["plans"][0]["cases"][0]["steps"]
    return code, steps[-1], out


def test_every_name_on_the_way_to_a_signed_mx_host_is_secure(tmp_path):
    code, step, out = dnssec_step(tmp_path, f"mx: {SECURE}", "dnssec: secure")
    assert code == 0, out
    names = step["details"]["dnssec"]["names"]
    assert [(n["name"], n["type"], n["status"]) for n in names] == [
        (SECURE, "MX", "secure"), (f"mx.{SECURE}", "A", "secure"), (f"_25._tcp.mx.{SECURE}", "TLSA", "secure")]
    assert f"DNSSEC: {SECURE} MX secure; mx.{SECURE} A secure" in out


@pytest.mark.parametrize(("domain", "found"), [(INSECURE, "insecure"), (BOGUS, "bogus")])
def test_a_domain_that_is_not_secure_fails_saying_what_it_is(tmp_path, domain, found):
    code, step, _ = dnssec_step(tmp_path, "host: 127.0.0.1", f"dnssec: secure, domain: {domain}")
    assert code == 1
    assert step["reason"].startswith(f"DNSSEC: {domain} MX is {found}, expected secure (")
    code, step, out = dnssec_step(tmp_path, "host: 127.0.0.1", f"dnssec: {found}, domain: {domain}")
    assert code == 0, out


def test_a_secure_denial_of_the_tlsa_records_is_secure(tmp_path):
    code, step, out = dnssec_step(tmp_path, f"mx: none.{SECURE}", "dnssec: secure")
    assert code == 0, out
    assert step["details"]["dnssec"]["names"][-1]["rcode"] == "NXDOMAIN"


def test_a_bogus_tlsa_answer_fails_a_secure_domain(tmp_path):
    code, step, _ = dnssec_step(tmp_path, f"mx: tampered.{SECURE}", "dnssec: secure")
    assert code == 1
    assert step["reason"].startswith(f"DNSSEC: _25._tcp.mx.tampered.{SECURE} TLSA is bogus, expected secure")


def test_an_address_alone_has_no_name_to_check(tmp_path):
    code, step, _ = dnssec_step(tmp_path, "host: 127.0.0.1", "dnssec: secure")
    assert code == 1
    assert step["reason"].startswith("no name to check DNSSEC for: the case connects to the address 127.0.0.1")


def test_valid_fails_only_a_bogus_name(tmp_path):
    code, step, _ = dnssec_step(tmp_path, f"mx: tampered.{SECURE}", "dnssec: valid")
    assert code == 1
    assert step["reason"].startswith(f"DNSSEC: _25._tcp.mx.tampered.{SECURE} TLSA is bogus (validation failed at ")
    code, step, out = dnssec_step(tmp_path, f"mx: {SECURE}", "dnssec: valid")
    assert code == 0 and step["details"]["dnssec"]["warnings"] == [], out


def test_valid_warns_of_an_unsigned_domain_naming_each_name(tmp_path):
    code, step, out = dnssec_step(tmp_path, "host: 127.0.0.1", f"dnssec: valid, domain: {INSECURE}")
    assert code == 0, out
    assert step["details"]["dnssec"]["warnings"] == [
        f"not signed (no AD bit, no RRSIG in the answers of 127.0.0.1:5311): {INSECURE} MX; DNSSEC is optional, "
        "but without it DANE cannot apply (RFC 7672 §2.2)"]
    assert "warning: DNSSEC: not signed" in out


def test_valid_warns_when_the_name_server_does_not_validate(tmp_path):
    """NSD, authoritative, sends signatures without the AD bit: no verdict, a warning, no failure."""
    require_dnssec()
    code, step, out = dnssec_step(tmp_path, f"mx: {SECURE}", "dnssec: valid", f"127.0.0.1:{AUTHORITATIVE[1]}")
    assert code == 0, out
    assert [n["status"] for n in step["details"]["dnssec"]["names"]] == ["unknown"] * 3
    assert step["details"]["dnssec"]["warnings"] == [
        f"no DNSSEC verdict for {SECURE} MX, mx.{SECURE} A, _25._tcp.mx.{SECURE} TLSA: 127.0.0.1:{AUTHORITATIVE[1]} "
        "gave no AD bit on signed answers or no answer (not a validating resolver, RFC 4035 §3.2.3); name one with "
        "--nameserver to judge DNSSEC"]
