"""checkdmarc as the oracle: for every SPF fixture zone, smtprun's lookup and void-lookup counts and its verdict
(errors or none) agree with checkdmarc's, both asking the same dnsmasq. Where they differ on purpose, the
difference is written here with the RFC section that decides it."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from runner.net.resolver import Lookups, ResolverConfig
from runner.net.spf import check_spf
from tests.support.posture_zones import SPF_ZONES, spf_records

with warnings.catch_warnings():  # dnspython's DSA support, imported by checkdmarc, warns under newer cryptography
    warnings.simplefilter("ignore")
    import checkdmarc.spf
    import dns.nameserver

# Where smtprun fails a record that checkdmarc calls valid, and why.
DIFFERENT = {
    # `+all` is well-formed, so checkdmarc (parsing syntax) passes it; smtprun judges the posture: the record
    # gives every address in the world `pass` (RFC 7208 §5.1, §8.3), which is no policy at all.
    "plusall.test": "'+all' passes every sender",
}


def _smtprun(server, domain: str):
    async def evaluate():
        async with Lookups() as lookups:
            return await check_spf(domain, "127.0.0.1", ResolverConfig(server.nameservers, 2.0), lookups)

    return asyncio.run(evaluate())


@pytest.mark.parametrize("domain", sorted(SPF_ZONES))
def test_spf_counts_and_verdicts_agree_with_checkdmarc(dnsmasq_factory, domain):
    server = dnsmasq_factory(*spf_records(domain))
    oracle = checkdmarc.spf.check_spf(domain, nameservers=[_nameserver(server)], timeout=2.0)
    ours = _smtprun(server, domain)
    if oracle.get("dns_lookups") is not None:  # checkdmarc gives no count once a loop or a second record stops it
        assert ours.lookups == oracle["dns_lookups"], (ours.facts(), oracle)
    if oracle.get("void_dns_lookups") is not None:
        assert ours.void_lookups == oracle["void_dns_lookups"], (ours.facts(), oracle)
    if domain in DIFFERENT:
        assert oracle["valid"] and any(DIFFERENT[domain] in e for e in ours.errors), (ours.facts(), oracle)
    else:
        assert oracle["valid"] == (not ours.errors), (ours.facts(), oracle)


def _nameserver(server) -> dns.nameserver.Do53Nameserver:
    """The fixture's dnsmasq as checkdmarc takes it: a dnspython name server with its own port."""
    return dns.nameserver.Do53Nameserver(server.host, server.port)
