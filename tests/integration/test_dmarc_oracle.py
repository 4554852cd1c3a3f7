"""checkdmarc as the oracle for DMARC: for every DMARC fixture zone, smtprun finds the record where checkdmarc
does (the domain's own, or its organisational domain's), reads the same p= and sp=, and gives the same verdict,
both asking the same dnsmasq. Where they differ on purpose, the RFC section that decides it is written here."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from runner.net.dmarc import check_dmarc
from runner.net.resolver import Lookups, ResolverConfig
from tests.support.posture_zones import DMARC_ZONES, dmarc_records

with warnings.catch_warnings():  # dnspython's DSA support, imported by checkdmarc, warns under newer cryptography
    warnings.simplefilter("ignore")
    import checkdmarc.dmarc
    import dns.nameserver

# Where smtprun fails a record that checkdmarc calls valid, and why.
DIFFERENT = {
    # checkdmarc only warns; a receiver MUST NOT send reports to a destination that has not authorised them
    # (RFC 7489 §7.1), so the domain's aggregate reports are lost: a failure of the posture.
    "extrua.test": "has not authorised reports for extrua.test",
}


def _smtprun(server, domain: str):
    async def evaluate():
        async with Lookups() as lookups:
            return await check_dmarc(domain, ResolverConfig(server.nameservers, 2.0), lookups)

    return asyncio.run(evaluate())


@pytest.mark.parametrize("domain", sorted(DMARC_ZONES))
def test_dmarc_verdicts_agree_with_checkdmarc(dnsmasq_factory, domain):
    server = dnsmasq_factory(*dmarc_records(domain))
    nameserver = dns.nameserver.Do53Nameserver(server.host, server.port)
    oracle = checkdmarc.dmarc.check_dmarc(domain, nameservers=[nameserver], timeout=2.0)
    ours = _smtprun(server, domain)
    assert ours.record == oracle["record"], (ours.facts(), oracle)
    if oracle["location"]:
        assert ours.location == f"_dmarc.{oracle['location']}"
    if oracle["valid"]:
        tags = oracle["tags"]
        assert (ours.facts()["p"], ours.facts()["sp"]) == (tags["p"]["value"], tags["sp"]["value"])
    if domain in DIFFERENT:
        assert oracle["valid"] and any(DIFFERENT[domain] in e for e in ours.errors), (ours.facts(), oracle)
    else:
        assert oracle["valid"] == (not ours.errors), (ours.facts(), oracle)
