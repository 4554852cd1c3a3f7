"""runner.net.dns against the in-process DNS server in tests/support/dnsserver.py (loopback only, no other resolver)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
import trustme

from runner.net.dane import TlsaRecord, judge
from runner.net.dns import (
    DnsError,
    Exchanger,
    ResolverConfig,
    ptr_check,
    resolve_host,
    resolve_mx,
    txt_present,
)
from runner.net.dnssec import validated
from tests.support.certs import association, der_chain
from tests.support.dnsserver import DnsServer

ZONE = {
    "example.test.": {"MX": ["10 mx1.example.test.", "20 mx2.example.test."], "TXT": ['"v=spf1 ip4:127.0.0.1 -all"']},
    "mx1.example.test.": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
    "mx2.example.test.": {"A": ["127.0.0.2"]},
    "_dmarc.example.test.": {"TXT": ['"v=DMARC1; p=reject"']},
    "_mta-sts.example.test.": {"TXT": ['"v=STSv1; id=20240101T000000"']},
    "equal.test.": {"MX": ["10 a.equal.test.", "10 b.equal.test.", "5 first.equal.test."]},
    "a.equal.test.": {"A": ["127.0.0.3"]},
    "b.equal.test.": {"A": ["127.0.0.4"]},
    "first.equal.test.": {"A": ["127.0.0.5"]},
    "implicit.test.": {"A": ["127.0.0.6"], "AAAA": ["::6"], "TXT": ['"v=spf1 " "-all"']},
    "nullmx.test.": {"MX": ["0 ."]},
    "nomail.test.": {"TXT": ['"hello"', '"v=spf10"']},
    "broken.test.": {"MX": ["10 gone.broken.test.", "20 mx1.example.test.", "30 bare.broken.test."]},
    "bare.broken.test.": {"TXT": ['"no address here"']},
    "v6only.test.": {"MX": ["10 mx.v6only.test."]},
    "mx.v6only.test.": {"AAAA": ["::7"]},
    "twospf.test.": {"TXT": ['"v=spf1 -all"', '"v=spf1 +all"']},
    "alias.test.": {"MX": ["10 www.alias.test."]},
    "www.alias.test.": {"CNAME": ["mx2.example.test."]},
    "many.test.": {"A": [f"127.0.1.{i}" for i in range(1, 61)]},
    "1.0.0.127.in-addr.arpa.": {"PTR": ["mx1.example.test."]},
    "9.0.0.127.in-addr.arpa.": {"PTR": ["liar.example.test."]},
    "liar.example.test.": {"A": ["127.0.0.99"]},
}


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture
def server() -> Iterator[DnsServer]:
    with DnsServer(ZONE) as dns_server:
        yield dns_server


@pytest.fixture
def config(server: DnsServer) -> ResolverConfig:
    return ResolverConfig(nameservers=server.nameservers, timeout=2.0)


# --- MX --------------------------------------------------------------------------------------------------------


def test_mx_ordered_by_preference_with_addresses(config):
    result = run(resolve_mx("example.test", config))
    assert result.domain == "example.test" and not result.implicit
    assert result.exchangers == (
        Exchanger("mx1.example.test", 10, ("127.0.0.1", "::1"), None),
        Exchanger("mx2.example.test", 20, ("127.0.0.2",), None),
    )


def test_equal_preferences_are_shuffled(config):
    async def orders() -> set[tuple[str, ...]]:
        return {tuple(e.host for e in (await resolve_mx("equal.test", config)).exchangers) for _ in range(40)}

    seen = run(orders())
    assert seen == {
        ("first.equal.test", "a.equal.test", "b.equal.test"),
        ("first.equal.test", "b.equal.test", "a.equal.test"),
    }


def test_no_mx_falls_back_to_the_domain_address(config):
    result = run(resolve_mx("implicit.test.", config))
    assert result.implicit
    assert result.exchangers == (Exchanger("implicit.test", 0, ("127.0.0.6", "::6"), None),)


def test_no_mx_and_no_address_is_an_error(config):
    with pytest.raises(DnsError, match=r"^no MX record and no A/AAAA record for nomail.test \(RFC 5321 §5.1\)$"):
        run(resolve_mx("nomail.test", config))


def test_null_mx_means_no_mail(config):
    with pytest.raises(DnsError, match=r"^null MX \(RFC 7505\): nullmx.test accepts no mail$"):
        run(resolve_mx("nullmx.test", config))


def test_null_mx_mixed_with_others_is_still_null(server, config):
    server.set("nullmx.test", "MX", ["0 .", "10 mx1.example.test."])
    with pytest.raises(DnsError, match=r"accepts no mail .*RFC 7505 §3 forbids"):
        run(resolve_mx("nullmx.test", config))


def test_nxdomain_names_the_query(config):
    with pytest.raises(DnsError, match=r"^NXDOMAIN for missing.test MX$"):
        run(resolve_mx("missing.test", config))


def test_servfail_names_the_query(server, config):
    server.servfail.add("example.test")
    with pytest.raises(DnsError, match=r"^SERVFAIL for example.test MX$"):
        run(resolve_mx("example.test", config))


def test_a_dns_error_carries_the_answer_code(server, config):
    server.servfail.add("example.test")
    with pytest.raises(DnsError) as servfail:
        run(resolve_mx("example.test", config))
    with pytest.raises(DnsError) as nxdomain:
        run(resolve_mx("missing.test", config))
    assert (servfail.value.rcode, servfail.value.nxdomain) == ("SERVFAIL", False)
    assert (nxdomain.value.rcode, nxdomain.value.nxdomain) == ("NXDOMAIN", True)


def test_exchanger_without_address_carries_the_reason(server, config):
    server.servfail.add("mx1.example.test")
    result = run(resolve_mx("broken.test", config))
    assert [(e.host, e.addresses, e.error) for e in result.exchangers] == [
        ("gone.broken.test", (), "NXDOMAIN for gone.broken.test A/AAAA"),
        ("mx1.example.test", (), "SERVFAIL for mx1.example.test A/AAAA"),
        ("bare.broken.test", (), "no A/AAAA record for bare.broken.test"),
    ]


def test_exchanger_behind_a_cname_resolves(config):
    result = run(resolve_mx("alias.test", config))
    assert result.exchangers == (Exchanger("www.alias.test", 10, ("127.0.0.2",), None),)


def test_timeout_is_bounded_and_named(server):
    server.silent.add("example.test")
    config = ResolverConfig(nameservers=server.nameservers, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(DnsError, match=rf"^DNS timeout after 1s for example.test MX "
                                       rf"\(name server 127.0.0.1:{server.port}\)$"):
        run(resolve_mx("example.test", config))
    assert time.monotonic() - started < config.timeout + 1


def test_nothing_listening_is_reported_not_raised_raw():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ResolverConfig(nameservers=(("127.0.0.1", port),), timeout=1.0)
    started = time.monotonic()
    with pytest.raises(DnsError, match=r"(no name server answered|DNS timeout after 1s for) example.test MX"):
        run(resolve_mx("example.test", config))
    assert time.monotonic() - started < config.timeout + 1


@pytest.mark.parametrize(
    ("families", "addresses"),
    [(("ipv4",), ("127.0.0.1",)), (("ipv6",), ("::1",)), (("ipv6", "ipv4"), ("::1", "127.0.0.1"))],
)
def test_families_choose_the_address_types(server, families, addresses):
    config = ResolverConfig(nameservers=server.nameservers, timeout=2.0, families=families)
    assert run(resolve_host("mx1.example.test", config)) == addresses
    assert run(resolve_mx("example.test", config)).exchangers[0].addresses == addresses


def test_ipv4_only_exchanger_with_only_aaaa_has_no_address(server):
    config = ResolverConfig(nameservers=server.nameservers, timeout=2.0, families=("ipv4",))
    (exchanger,) = run(resolve_mx("v6only.test", config)).exchangers
    assert exchanger.addresses == () and exchanger.error == "no A record for mx.v6only.test"


# --- hosts and name servers ------------------------------------------------------------------------------------


def test_resolve_host_errors(config):
    with pytest.raises(DnsError, match=r"^NXDOMAIN for nowhere.example.test A/AAAA$"):
        run(resolve_host("nowhere.example.test", config))
    with pytest.raises(DnsError, match=r"^no A/AAAA record for example.test$"):
        run(resolve_host("example.test", config))


def test_truncated_udp_answer_is_retried_over_tcp(server, config):
    assert len(run(resolve_host("many.test", config))) == 60  # 60 A records do not fit 512 octets
    server.truncate.add("mx2.example.test")
    assert run(resolve_host("mx2.example.test", config)) == ("127.0.0.2",)
    assert ("mx2.example.test.", "A", "tcp") in server.queries


# --- PTR -------------------------------------------------------------------------------------------------------


def test_ptr_forward_confirmed_and_matching(config):
    assert run(ptr_check("127.0.0.1", ["MX1.Example.Test."], config)) is None
    assert run(ptr_check("127.0.0.1", ["other.test", "mx1.example.test"], config)) is None


def test_ptr_not_matching_the_banner(config):
    reason = run(ptr_check("127.0.0.1", ["mail.example.test"], config))
    assert reason == "PTR of 127.0.0.1 is mx1.example.test, which does not match mail.example.test"


def test_ptr_not_forward_confirmed(config):
    reason = run(ptr_check("127.0.0.9", ["liar.example.test"], config))
    assert reason == (
        "PTR of 127.0.0.9 is liar.example.test, which does not resolve back to 127.0.0.9: "
        "liar.example.test A is 127.0.0.99"
    )


def test_no_ptr(config):
    reason = run(ptr_check("127.0.0.7", ["mx1.example.test"], config))
    assert reason == "no PTR record for 127.0.0.7: NXDOMAIN for 7.0.0.127.in-addr.arpa PTR"


def test_a_ptr_the_name_server_fails_on_is_not_checked_rather_than_missing(server, config):
    server.servfail.add("1.0.0.127.in-addr.arpa")
    reason = run(ptr_check("127.0.0.1", [], config))
    assert reason == "PTR record for 127.0.0.1 not checked: SERVFAIL for 1.0.0.127.in-addr.arpa PTR"


# --- TXT -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "domain"),
    [("spf", "example.test"), ("spf", "implicit.test"), ("dmarc", "example.test"), ("mta_sts", "example.test")],
)
def test_txt_present(config, kind, domain):
    assert run(txt_present(kind, domain, config)) is None


@pytest.mark.parametrize(
    ("kind", "domain", "reason"),
    [
        ("spf", "nomail.test", "no SPF record at nomail.test: no TXT record starts with v=spf1 "
                               "(TXT records: 'hello'; 'v=spf10')"),
        ("spf", "twospf.test", "2 SPF records at twospf.test; RFC 7208 §4.5 allows one"),
        ("spf", "mx2.example.test", "no SPF record at mx2.example.test: no TXT record starts with v=spf1 "
                                    "(TXT records: none)"),
        ("dmarc", "implicit.test", "no DMARC record: NXDOMAIN for _dmarc.implicit.test TXT"),
        ("mta_sts", "implicit.test", "no MTA-STS record: NXDOMAIN for _mta-sts.implicit.test TXT"),
    ],
)
def test_txt_missing(config, kind, domain, reason):
    assert run(txt_present(kind, domain, config)) == reason


def test_a_txt_record_the_name_server_fails_on_is_not_checked_rather_than_missing(server, config):
    server.servfail.add("_dmarc.example.test")
    reason = run(txt_present("dmarc", "example.test", config))
    assert reason == "DMARC record not checked: SERVFAIL for _dmarc.example.test TXT"


def test_txt_unknown_kind(config):
    with pytest.raises(ValueError, match="unknown TXT record kind 'dkim'"):
        run(txt_present("dkim", "example.test", config))


# --- TLSA, read with its DNSSEC status (runner/net/dnssec.py) and judged (runner/net/dane.py) ----------------------


@pytest.fixture(scope="module", params=[trustme.KeyType.ECDSA, trustme.KeyType.RSA], ids=["ecdsa", "rsa"])
def chain(request) -> list[bytes]:
    """DER of a leaf for mx1.example.test and its CA, end-entity first."""
    return der_chain(request.param)


def tlsa_answer(config: ResolverConfig, name: str = "_25._tcp.mx1.example.test"):
    return run(validated(name, "TLSA", config))


@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize("mtype", [0, 1, 2])
def test_tlsa_records_read_back_from_an_unsigned_zone_are_insecure(server, config, chain, selector, mtype):
    data = association(chain[0], selector, mtype)
    server.set("_25._tcp.mx1.example.test", "TLSA", [f"3 {selector} {mtype} {data}"])
    answer = tlsa_answer(config)
    assert (answer.status, answer.rcode) == ("insecure", "NOERROR")
    assert [(r.usage, r.selector, r.mtype, r.cert.hex()) for r in answer.records] == [(3, selector, mtype, data)]
    records = [TlsaRecord(r.usage, r.selector, r.mtype, r.cert) for r in answer.records]
    assert judge(records, chain, ["mx1.example.test"]).matched  # they match, yet a DANE sender does not use them


def test_no_tlsa_record_is_an_empty_answer_not_an_error(server, config):
    answer = tlsa_answer(config)
    assert (answer.status, answer.rcode, answer.records) == ("insecure", "NXDOMAIN", ())
    server.set("_25._tcp.mx2.example.test", "TXT", ['"not a TLSA record"'])
    answer = tlsa_answer(config, "_25._tcp.mx2.example.test")
    assert (answer.rcode, answer.records) == ("NOERROR", ())
