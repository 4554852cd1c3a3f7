"""The DNSSEC status of an answer, as the name servers the plan names judged it: the AD bit of a validating resolver.

A query goes out with the DO bit (RFC 3225) and the AD bit (RFC 6840 §5.7, so a validating resolver says what
it found) to the plan's name servers, or the system's. The answer's status is one of RFC 4035 §4.3's:

- **secure**: the resolver set AD: it validated the answer, or the denial that there is none, from its trust
  anchor down;
- **insecure**: no AD and no signatures: the zone is unsigned (or proven to be: no DS in its parent);
- **bogus**: the resolver refused the answer (SERVFAIL) because validation failed: said with its Extended DNS
  Error (RFC 8914, e.g. "Signature Expired") where it gives one, and confirmed by asking again with checking
  disabled (CD, RFC 4035 §3.2.2), which answers when only the signatures are wrong;
- **unknown**: no verdict: a signed answer without AD (the name server does not validate, as an authoritative
  server or a plain forwarder does not), or no answer at all (a timeout, SERVFAIL with CD too).

c-ares (runner/net/resolver.py) can neither set these bits nor read AD, so this asks with dnspython, on the
running loop. docs/posture.md says why smtprun trusts the resolver's AD bit instead of validating by itself.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass, field
from typing import Any

from runner.net.address import hostport
from runner.net.resolver import PER_TRY, DnsError, ResolverConfig, shown

__all__ = ["STATUSES", "Validated", "validated"]

STATUSES = ("secure", "insecure", "bogus", "unknown")
_DNSSEC_EDE = {1: "Unsupported DNSKEY Algorithm", 2: "Unsupported DS Digest Type", 5: "DNSSEC Indeterminate",
               6: "DNSSEC Bogus", 7: "Signature Expired", 8: "Signature Not Yet Valid", 9: "DNSKEY Missing",
               10: "RRSIGs Missing", 11: "No Zone Key Bit Set", 12: "NSEC Missing"}  # RFC 8914 §4


@dataclass(frozen=True)
class Validated:
    """One name and type asked: the records found (text form), the DNSSEC status and why, who said it."""

    name: str
    rdtype: str
    status: str
    reason: str
    rcode: str  # NOERROR, NXDOMAIN, SERVFAIL...; "" when nothing answered
    server: str  # "127.0.0.1:53", the name server that answered
    local: bool  # that server is on this host (loopback): see on_this_host
    records: tuple[Any, ...] = field(default=())  # dnspython rdata of rdtype, as the resolver gave them
    resolver_text: str = ""  # the resolver's own words on a failure (RFC 8914 EXTRA-TEXT), when it gave any

    def facts(self) -> dict[str, Any]:
        facts = {"name": self.name, "type": self.rdtype, "status": self.status, "reason": self.reason,
                 "rcode": self.rcode, "server": self.server}
        if self.resolver_text:
            facts["resolver_text"] = self.resolver_text
        return facts


def _servers(config: ResolverConfig) -> list[tuple[str, int]]:
    if config.nameservers:
        return list(config.nameservers)
    import dns.resolver

    try:
        system = dns.resolver.Resolver(configure=True)
    except dns.resolver.NoResolverConfiguration:
        raise DnsError("no system DNS resolver is configured (/etc/resolv.conf); give name servers") from None
    return [(str(server), 53) for server in system.nameservers]


def on_this_host(server: tuple[str, int]) -> bool:
    """Whether the AD bit comes over loopback: only then is the path to the resolver not an open network
    (RFC 4035 §4.9.3: a stub trusts AD only from a resolver it trusts, over a channel it trusts)."""
    return ipaddress.ip_address(server[0]).is_loopback


async def _ask(name: str, rdtype: str, server: tuple[str, int], deadline: float, cd: bool = False) -> Any:
    """The reply of one server (UDP, then TCP when truncated), checking disabled when `cd`."""
    import dns.asyncquery
    import dns.flags
    import dns.message

    query = dns.message.make_query(name, rdtype, want_dnssec=True)
    query.flags |= dns.flags.AD | (dns.flags.CD if cd else 0)
    timeout = max(0.001, min(PER_TRY, deadline - time.monotonic()))
    host, port = server
    reply = await dns.asyncquery.udp(query, host, timeout=timeout, port=port, ignore_unexpected=True)
    if reply.flags & dns.flags.TC:  # RFC 7766 §5: a truncated answer is asked again over TCP
        reply = await dns.asyncquery.tcp(query, host, timeout=max(0.001, deadline - time.monotonic()), port=port)
    return reply


async def _reply(name: str, rdtype: str, servers: list[tuple[str, int]], deadline: float,
                 cd: bool = False) -> tuple[Any, tuple[str, int]]:
    """The first server's reply that comes, each tried in turn (and again) until the deadline."""
    import dns.exception

    failures: list[str] = []
    for _ in range(max(1, math.ceil((deadline - time.monotonic()) / PER_TRY))):  # tries, as the resolver's
        for server in servers:
            if time.monotonic() >= deadline:
                break
            try:
                return await _ask(name, rdtype, server, deadline, cd), server
            except (dns.exception.DNSException, OSError) as e:
                failures.append(f"{hostport(*server)}: {e or type(e).__name__}")
    raise DnsError(f"no name server answered {shown(name)} {rdtype} with DNSSEC ({'; '.join(failures[-2:])})")


def _signed(reply: Any) -> bool:
    """Whether the answer or its denial carries signatures (RRSIG, RFC 4034 §3)."""
    import dns.rdatatype

    return any(rrset.rdtype == dns.rdatatype.RRSIG for rrset in (*reply.answer, *reply.authority))


def _records(reply: Any, rdtype: str) -> tuple[Any, ...]:
    import dns.rdatatype

    wanted = dns.rdatatype.from_text(rdtype)
    return tuple(rdata for rrset in reply.answer if rrset.rdtype == wanted for rdata in rrset)


def _ede(reply: Any) -> tuple[str, str]:
    """The DNSSEC Extended DNS Errors (RFC 8914) in a reply: their codes in words ("EDE 7 Signature Expired"), for
    the verdict, and the resolver's EXTRA-TEXT apart. unbound gives that text when it validates, not when it answers
    from its cache, so a verdict that carried it would read differently from one run to the next."""
    found = [error for error in reply.extended_errors() if int(error.code) in _DNSSEC_EDE]
    codes = "; ".join(f"EDE {int(e.code)} {_DNSSEC_EDE[int(e.code)]}" for e in found)
    return codes, "; ".join(e.text for e in found if e.text)


async def validated(name: str, rdtype: str, config: ResolverConfig) -> Validated:
    """name/rdtype asked of the plan's name servers: its records and DNSSEC status. DnsError when none answers."""
    import dns.flags
    import dns.rcode

    servers = _servers(config)
    deadline = time.monotonic() + config.timeout
    reply, server = await _reply(name, rdtype, servers, deadline)
    rcode = dns.rcode.to_text(reply.rcode())
    where = hostport(*server)

    ede, resolver_text = _ede(reply)

    def said(status: str, reason: str, answer: Any = reply) -> Validated:
        return Validated(shown(name), rdtype, status, reason, rcode, where, on_this_host(server),
                         _records(answer, rdtype), resolver_text)

    if rcode in ("NOERROR", "NXDOMAIN"):
        if reply.flags & dns.flags.AD:
            return said("secure", f"validated by {where} (AD bit set)")
        if _signed(reply):
            return said("unknown", f"signed, but {where} did not validate it (no AD bit): it is not a "
                                   "validating resolver")
        return said("insecure", f"not signed (no AD bit, no RRSIG from {where})")
    if rcode != "SERVFAIL":
        return said("unknown", f"{rcode} from {where}")
    if ede:
        return said("bogus", f"validation failed at {where}: {ede}")
    try:  # RFC 4035 §3.2.2: with CD the resolver answers what it would have refused for a validation failure
        unchecked, _ = await _reply(name, rdtype, [server], deadline, cd=True)
    except DnsError:
        return said("unknown", f"SERVFAIL from {where}, and no answer with checking disabled")
    if dns.rcode.to_text(unchecked.rcode()) in ("NOERROR", "NXDOMAIN"):
        return said("bogus", f"validation failed at {where}: SERVFAIL, yet an answer with checking disabled (CD)",
                    unchecked)
    return said("unknown", f"SERVFAIL from {where} even with checking disabled: the zone's servers fail, "
                           "not its signatures")
