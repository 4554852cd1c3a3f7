"""`expect_dns: {dnsbl: ...}` looks MX addresses up in fixture blocklists served by dnsmasq (RFC 5782)."""

from __future__ import annotations

import pytest

from tests.support.dnsstep import run_dns_step
from tests.support.posture_zones import DNSBL_RECORDS


@pytest.fixture
def lists(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*DNSBL_RECORDS)
    return lambda options: run_dns_step(tmp_path, embedded.port, dns, options)


def test_an_mx_address_not_listed_passes(lists):
    code, step, out = lists("domain: clean.test, dnsbl: {zones: [bl.test]}")
    assert code == 0, out
    facts = step["details"]["dnsbl"]
    assert (facts["addresses"], facts["listed"]) == (["127.0.0.1"], [])
    assert facts["lookups"][0]["name"] == "1.0.0.127.bl.test"


def test_a_listed_mx_address_fails_with_the_lists_reason(lists):
    code, step, _ = lists("domain: listed.test, dnsbl: {zones: [bl.test]}")
    assert code == 1
    assert step["reason"] == "Blocklists: 127.0.0.2 is listed in bl.test (127.0.0.2: Listed: see https://bl.test/q/2)"
    assert step["details"]["dnsbl"]["listed"][0]["codes"] == ["127.0.0.2"]


def test_a_refused_query_is_said_as_such_never_as_a_listing(lists):
    code, step, out = lists("domain: clean.test, dnsbl: {zones: [refusing.test], address: 127.0.0.2}")
    assert code == 0, out
    (found,) = step["details"]["dnsbl"]["lookups"]
    assert (found["listed"], found["refused"], found["codes"]) == (False, True, ["127.255.255.254"])
    (warning,) = step["details"]["dnsbl"]["warnings"]
    assert warning == ("refusing.test answered 127.255.255.254 for 127.0.0.2: query refused by the list (its error "
                       "code, not a listing; the list may refuse queries from public resolvers)")


def test_no_zone_named_is_a_warning(lists):
    code, step, out = lists("domain: clean.test, dnsbl: {zones: []}")
    assert code == 0, out
    assert step["details"]["dnsbl"]["warnings"] == [
        "no blocklist zone named: no address looked up (name the DNSBL zones with dnsbl.zones)"]
    assert step["details"]["dnsbl"]["addresses"] == []


def test_an_address_is_looked_up_without_a_mail_domain(lists):
    """The plan's target is a bare address and names no domain: the address given is still asked about."""
    code, step, out = lists("dnsbl: {zones: [bl.test], address: 127.0.0.2}")
    assert code == 1 and "no mail domain" not in out, out
    assert step["reason"] == "Blocklists: 127.0.0.2 is listed in bl.test (127.0.0.2: Listed: see https://bl.test/q/2)"


def test_without_a_mail_domain_or_an_address_the_address_connected_to_is_asked_about(lists):
    code, step, out = lists("dnsbl: {zones: [bl.test]}")
    assert code == 0, out
    facts = step["details"]["dnsbl"]
    assert (facts["addresses"], facts["listed"]) == (["127.0.0.1"], [])


def test_domain_checks_beside_it_still_need_a_mail_domain(lists):
    code, step, _ = lists("dnsbl: {zones: [bl.test], address: 127.0.0.2}, spf: present")
    assert code == 1
    assert step["reason"].startswith("no mail domain to look up: the run connects to the address 127.0.0.1")
