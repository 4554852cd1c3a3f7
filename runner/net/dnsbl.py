"""DNS blocklists (RFC 5782): an address reversed under a list's zone and asked for A records, a listing's TXT
reason read. A listing is an answer in 127.0.0.0/8 (§2.1); the 127.255.255.0/24 codes that Spamhaus and others
answer to queries they refuse (from public resolvers, over a quota) are said as such, never as a listing."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from runner.net.resolver import DnsError, Lookups, ResolverConfig, shown

__all__ = ["Lookup", "listing_name", "look_up"]

_LISTING = ipaddress.ip_network("127.0.0.0/8")  # RFC 5782 §2.1: list entries are A records in 127.0.0.0/8
_REFUSED = ipaddress.ip_network("127.255.255.0/24")  # list error codes (Spamhaus: 127.255.255.252, .254, .255)


def listing_name(address: str, zone: str) -> str:
    """The name asked for an address: IPv4 octets reversed (RFC 5782 §2.1), IPv6 nibbles reversed (§2.4)."""
    ip = ipaddress.ip_address(address)
    labels = ip.reverse_pointer.split(".")[:-2]  # without in-addr.arpa / ip6.arpa
    return ".".join(labels) + "." + shown(zone).lower()


@dataclass
class Lookup:
    """One address looked up in one list: the JSON facts of each pair."""

    address: str
    zone: str
    name: str
    listed: bool = False
    refused: bool = False
    codes: list[str] = field(default_factory=list)
    reason: str | None = None
    error: str | None = None

    def facts(self) -> dict[str, Any]:
        return {"address": self.address, "zone": self.zone, "name": self.name, "listed": self.listed,
                "refused": self.refused, "codes": self.codes, "reason": self.reason, "error": self.error}

    @property
    def said(self) -> str:
        """What the list said, in words, for the step's message."""
        if self.listed:
            return f"{self.address} is listed in {self.zone} ({', '.join(self.codes)}" + \
                (f": {self.reason})" if self.reason else ")")
        if self.refused:
            return f"{self.zone} answered {', '.join(self.codes)} for {self.address}: query refused by the list " \
                   "(its error code, not a listing; the list may refuse queries from public resolvers)"
        return self.error or f"{self.address} is not listed in {self.zone}"


async def look_up(address: str, zone: str, config: ResolverConfig, lookups: Lookups) -> Lookup:
    """The address in the zone: NXDOMAIN is not listed; 127.0.0.0/8 answers a listing or the list's refusal."""
    found = Lookup(address, shown(zone).lower(), listing_name(address, zone))
    try:
        answers = await lookups.query(found.name, "A", config)
    except DnsError as e:
        if not e.nxdomain:
            found.error = f"{zone} not asked about {address}: {e}"
        return found
    found.codes = sorted(answers, key=ipaddress.ip_address)
    codes = [ipaddress.ip_address(code) for code in found.codes]
    if not codes:
        return found
    if any(code not in _LISTING for code in codes):
        found.error = (f"{zone} answered {', '.join(found.codes)} for {address}: outside 127.0.0.0/8, not a "
                       "blocklist's answer (RFC 5782 §2.1; a resolver that rewrites NXDOMAIN?)")
        return found
    if all(code in _REFUSED for code in codes):
        found.refused = True
        return found
    found.listed = True
    try:
        texts = await lookups.query(found.name, "TXT", config)  # RFC 5782 §2.1: the reason, where the list gives one
    except DnsError:
        texts = []
    found.reason = " ".join(t.decode("utf-8", "replace") for t in texts) or None
    return found
