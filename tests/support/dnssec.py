"""The DNSSEC test zones of scripts/env/dnssec.sh: NSD serves them, unbound validates them with their trust anchor.

    dnssec.test            signed: the trust anchor
    signed.dnssec.test     signed, DS in the parent: secure
    bogus.dnssec.test      signed, DS in the parent, signatures expired in 2020: bogus
    unsigned.dnssec.test   no DS in the parent (proven by its NSEC): insecure

Each zone's mail domain (the zone itself) has the MX host `mx.<zone>` at 127.0.0.1, which is the test Postfix on
port 25, and TLSA records at `_25._tcp.mx.<zone>`: "3 1 1" of the test server's key and "2 1 1" of the test CA's.
Under signed.dnssec.test, one mail domain per DANE case (`mx.<case>.signed.dnssec.test`): see DANE_DOMAINS.
"""

from __future__ import annotations

import dns.exception
import dns.message
import dns.query

from tests.support.mtas import missing

RESOLVER = ("127.0.0.1", 5311)  # unbound, validating (scripts/env/dnssec.sh says the same)
AUTHORITATIVE = ("127.0.0.1", 5310)  # NSD: answers with signatures, never with the AD bit
NAMESERVER = f"{RESOLVER[0]}:{RESOLVER[1]}"  # as a plan writes it
PARENT = "dnssec.test"
SECURE, BOGUS, INSECURE = f"signed.{PARENT}", f"bogus.{PARENT}", f"unsigned.{PARENT}"
DANE_DOMAINS = {  # mail domain: its MX host's TLSA records
    SECURE: "3 1 1 (the server's key) and 2 1 1 (the test CA's key): matches, with a rollover",
    f"ee.{SECURE}": "3 1 1 (the server's key) only: matches, no rollover",
    f"ta.{SECURE}": "2 0 1 (the test CA's certificate) only: matches, no rollover",
    f"wrong.{SECURE}": "3 1 1 of a key no server has: no match",
    f"next.{SECURE}": "3 1 1 of the server's key and of the next key: matches, with a rollover",
    f"types.{SECURE}": "3 0 0, 3 0 2, 3 1 0, 3 1 2 of the server's certificate and key: match",
    f"none.{SECURE}": "no TLSA record (a signed denial)",
}


def _answers(server: tuple[str, int]) -> bool:
    query = dns.message.make_query(f"{PARENT}.", "SOA", want_dnssec=True)
    try:
        reply = dns.query.udp(query, server[0], port=server[1], timeout=2)
    except (dns.exception.DNSException, OSError):
        return False
    return reply.rcode() == 0


def require_dnssec() -> str:
    """The validating resolver as a plan names it, if it and NSD answer; else skip, or fail when CI is set."""
    for server, what in ((AUTHORITATIVE, "NSD"), (RESOLVER, "unbound")):
        if not _answers(server):
            missing(f"{what} does not answer for {PARENT} on {server[0]}:{server[1]}: "
                    "run scripts/test-env.sh (scripts/env/dnssec.sh) as root")
    return NAMESERVER
