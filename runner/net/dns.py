"""DNS lookups a mail test needs: MX with fallback and null MX, addresses, PTR, SPF/DMARC/MTA-STS TXT.

DANE's TLSA records are asked with their DNSSEC status (runner/net/dnssec.py) and judged in runner/net/dane.py.

The queries go through runner.net.resolver: a run passes its `Lookups` (one channel per name-server set, a cap
on queries in flight, each name and type asked once per run); without one, each call makes its own. Every
failure is a DnsError whose message names the query ("NXDOMAIN for example.test MX"); every query is bounded
by the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import random
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from runner.net.address import split_hostport
from runner.net.resolver import FAMILIES, DnsError, Lookups, ResolverConfig, server, shown

__all__ = [
    "DnsError", "Exchanger", "Lookups", "MxResult", "ResolverConfig", "parse_nameserver", "ptr_check",
    "resolve_host", "resolve_mx", "txt_present",
]


@dataclass(frozen=True)
class Exchanger:
    """One mail exchanger: its name, MX preference, and addresses (or why it has none)."""

    host: str
    preference: int
    addresses: tuple[str, ...]
    error: str | None  # why it has none, e.g. "NXDOMAIN for mx2.example.test A/AAAA"
    partly: str | None = None  # beside addresses of one family, the other's failure: "DNS timeout after ... AAAA"


@dataclass(frozen=True)
class MxResult:
    """Where mail for a domain goes, in the order a sender tries (RFC 5321 §5.1)."""

    domain: str
    exchangers: tuple[Exchanger, ...]
    implicit: bool  # no MX record: the domain's own A/AAAA, as if "MX 0 domain" (RFC 5321 §5.1)
    omitted: int = 0  # exchangers past MAX_EXCHANGERS, neither looked up nor tried


MAX_EXCHANGERS = 32  # distinct MX hosts looked up per domain: with A and AAAA, one round of 64 queries in flight
MAX_NAME_OCTETS = 255  # RFC 1035 §2.3.4: a name on the wire, length octets included
_ESCAPE = re.compile(r"\\(?:[0-9]{3}|.)")  # c-ares writes odd octets of a name as \DDD or \X: one octet each


@functools.lru_cache(maxsize=64)  # a fleet's 10,000 targets share their plan's few
def config_for(nameservers: Sequence[str], timeout: float, families: Sequence[str]) -> ResolverConfig:
    """A resolver configuration from a plan's target: name servers as written ("IP[:PORT]")."""
    return ResolverConfig(tuple(parse_nameserver(n) for n in nameservers), timeout, tuple(families))


def parse_nameserver(text: str) -> tuple[str, int]:
    """`127.0.0.1`, `127.0.0.1:5353`, `::1`, `[::1]:5353` -> (address, port); the port defaults to 53."""
    usage = "expected an IP address with an optional port: 127.0.0.1, 127.0.0.1:5353, ::1 or [::1]:5353"
    value = text.strip()
    try:
        host, port = split_hostport(value)
    except ValueError:  # brackets not closed, or followed by more than a port: not an address at all
        host, port = value, None
    else:
        if value.startswith("[") and ":" not in host:
            raise ValueError(f"invalid name server {text!r}: brackets are for IPv6 addresses; {usage}")
    if port is not None and not (port.isascii() and port.isdigit()):
        raise ValueError(f"invalid name server {text!r}: port {port!r} is not a number; {usage}")
    try:
        return server(host, 53 if port is None else int(port))
    except ValueError as e:
        raise ValueError(f"invalid name server {text!r}: {e}; {usage}") from None


@contextlib.asynccontextmanager
async def _using(lookups: Lookups | None) -> AsyncIterator[Lookups]:
    """The run's lookups, or ones of this call's own, closed when it is done."""
    if lookups is not None:
        yield lookups
        return
    async with Lookups() as own:
        yield own


@dataclass(frozen=True)
class _Found:
    """A host's addresses, and what failed: beside addresses of one family the other's failure, or why there are
    none ("" when nothing failed: the name has no address records, `absent`)."""

    addresses: tuple[str, ...]
    failure: str
    absent: str  # what to say when nothing failed and nothing was found: "no A/AAAA record for HOST"

    @property
    def reason(self) -> str:
        return self.failure or ("" if self.addresses else self.absent)


_Asked = tuple[list[str], list[asyncio.Future[tuple[str, ...]]]]  # record types, and a waiter for each


def _ask(host: str, config: ResolverConfig, lookups: Lookups, families: tuple[str, ...] = ()) -> _Asked:
    """The lookups of host's addresses started, A and AAAA together: the record types and a waiter for each."""
    rdtypes = [FAMILIES[f] for f in families or config.families]
    return rdtypes, [lookups.answer(host, t, config) for t in rdtypes]


async def _addresses(host: str, config: ResolverConfig, lookups: Lookups, families: tuple[str, ...] = ()) -> _Found:
    """Addresses of host in the configured families' order (A and AAAA asked together), and what failed."""
    return await _found(host, *_ask(host, config, lookups, families))


async def _found(host: str, rdtypes: list[str], answers: list[asyncio.Future[tuple[str, ...]]]) -> _Found:
    """What the lookups `_ask` started found, in the order of rdtypes."""
    joined = "/".join(rdtypes)
    addresses: list[str] = []
    failures: dict[str, str] = {}
    for rdtype, answer in zip(rdtypes, answers, strict=True):
        try:
            addresses += await answer
        except DnsError as error:
            failures[rdtype] = str(error)
    # "NXDOMAIN for h A" and "NXDOMAIN for h AAAA" read better as one "NXDOMAIN for h A/AAAA"
    alike = {text.replace(f"{shown(host)} {rdtype}", f"{shown(host)} {joined}") for rdtype, text in failures.items()}
    failure = alike.pop() if len(failures) == len(rdtypes) > 1 and len(alike) == 1 else "; ".join(failures.values())
    return _Found(tuple(addresses), failure, f"no {joined} record for {shown(host)}")


async def resolve_host(host: str, config: ResolverConfig, lookups: Lookups | None = None) -> tuple[str, ...]:
    """The addresses of host in the configured families; an IP literal is returned as is."""
    try:
        ipaddress.ip_address(host)
        return (host,)
    except ValueError:
        pass
    async with _using(lookups) as asking:
        found = await _addresses(host, config, asking)
    if not found.addresses:
        raise DnsError(found.reason)
    return found.addresses


async def resolve_mx(domain: str, config: ResolverConfig, lookups: Lookups | None = None) -> MxResult:
    """The exchangers for domain in delivery order, each with its addresses (RFC 5321 §5.1)."""
    if lookups is not None:
        return await _resolve_mx(domain, config, lookups)
    async with Lookups() as own:
        return await _resolve_mx(domain, config, own)


async def _resolve_mx(domain: str, config: ResolverConfig, lookups: Lookups) -> MxResult:
    name = shown(domain)
    if _is_address(domain.strip("[]").split("%")[0]):  # MX records are a domain's (RFC 5321 §5.1), never an address's
        raise DnsError(f"{name} is an IP address, not a mail domain (RFC 5321 §5.1): "
                       "name it as a host to connect to it")
    records = await lookups.query(domain, "MX", config)
    if not records:  # RFC 5321 §5.1: no MX, so the domain itself is the exchanger, preference 0
        own = await _addresses(domain, config, lookups)
        if not own.addresses:
            raise DnsError(own.failure or f"no MX record and {own.absent} (RFC 5321 §5.1)")
        return MxResult(name, (Exchanger(name, 0, own.addresses, None),), implicit=True)
    if any(exchange == "." for _, exchange in records):
        extra = "" if len(records) == 1 else " (it also lists other MX records, which RFC 7505 §3 forbids)"
        raise DnsError(f"null MX (RFC 7505): {name} accepts no mail{extra}")
    ordered = _ordered(records)
    omitted = max(len(ordered) - MAX_EXCHANGERS, 0)
    ordered = ordered[:MAX_EXCHANGERS]
    refused = {host: _not_a_host(host) for _, host in ordered}
    asked = {host: _ask(host, config, lookups) for _, host in ordered if not refused[host]}  # all at once
    found = [await _found(host, *asked[host]) if host in asked else _Found((), refused[host] or "", "")
             for _, host in ordered]
    exchangers = tuple(
        Exchanger(host, preference, each.addresses, None, each.reason or None) if each.addresses
        else Exchanger(host, preference, (), each.reason)
        for (preference, host), each in zip(ordered, found, strict=True)
    )
    return MxResult(name, exchangers, implicit=False, omitted=omitted)


def _ordered(records: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(preference, host) in the order a sender tries them (RFC 5321 §5.1), each host once: a record repeated in
    the answer is one record (RFC 2181 §5), and a host listed at two preferences is tried at the lower."""
    seen: set[str] = set()
    ordered: list[tuple[int, str]] = []
    for preference in sorted({preference for preference, _ in records}):
        hosts = [shown(exchange) for p, exchange in records if p == preference]
        hosts = [h for h in dict.fromkeys(hosts) if h.lower() not in seen]
        seen.update(h.lower() for h in hosts)
        random.shuffle(hosts)  # RFC 5321 §5.1: equal preferences are tried in random order
        ordered += [(preference, host) for host in hosts]
    return ordered


def _not_a_host(exchange: str) -> str | None:
    """Why an MX target is not looked up, or None: it must be a host name (RFC 5321 §5.1; RFC 2181 §10.3), not
    an address literal (a sender that used one would deliver where no DNS name says), and fit RFC 1035 §2.3.4."""
    literal = exchange[1:-1] if exchange.startswith("[") and exchange.endswith("]") else exchange
    if _is_address(literal.split("%")[0]):
        return f"MX target {exchange} is an IP address, not a host name (RFC 5321 §5.1); not used"
    if len(exchange) <= MAX_NAME_OCTETS - 2:  # n characters are at most n + 2 octets on the wire
        return None
    octets = sum(len(label) + 1 for label in _ESCAPE.sub("x", exchange).split(".") if label) + 1
    if octets > MAX_NAME_OCTETS:
        return (f"MX target {exchange[:40]}... is {octets} octets long, over the {MAX_NAME_OCTETS} "
                "RFC 1035 §2.3.4 allows; not used")
    return None


def _is_address(text: str) -> bool:
    """Whether text is an IP address as `ipaddress` reads one. A host name has letters and no colon, while an IPv4
    address is ASCII digits and dots and an IPv6 one has colons: most names are told apart without the cost of
    `ipaddress` raising ValueError (a fleet asks this of 20,000 names)."""
    if ":" not in text and not text.replace(".", "").isdigit():
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def ptr_check(address: str, names: list[str], config: ResolverConfig,
                    lookups: Lookups | None = None) -> str | None:
    """None when address has a PTR that resolves back to it (forward-confirmed) and equals one of names
    (the banner host or EHLO name; any forward-confirmed PTR passes when names is empty); else the reason."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"not an IP address: {address!r}") from None
    reverse = ip.reverse_pointer  # RFC 1035 §3.5, RFC 3596 §2.5
    async with _using(lookups) as asking:
        try:
            ptrs = [shown(target) for target in await asking.query(reverse, "PTR", config)]
        except DnsError as e:
            return f"no PTR record for {address}: {e}" if e.nxdomain else f"PTR record for {address} not checked: {e}"
        if not ptrs:
            return f"no PTR record for {address} ({reverse})"
        family = "ipv4" if ip.version == 4 else "ipv6"
        forward = await asyncio.gather(*(_addresses(name, config, asking, (family,)) for name in ptrs))
    confirmed, notes = [], []
    for name, each in zip(ptrs, forward, strict=True):
        if any(ipaddress.ip_address(a) == ip for a in each.addresses):
            confirmed.append(name)
        else:
            notes.append(each.reason or f"{name} {FAMILIES[family]} is {', '.join(each.addresses)}")
    if not confirmed:
        return f"PTR of {address} is {', '.join(ptrs)}, which does not resolve back to {address}: {'; '.join(notes)}"
    wanted = {name.rstrip(".").lower() for name in names}
    if not wanted or any(name.lower() in wanted for name in confirmed):
        return None
    return f"PTR of {address} is {', '.join(confirmed)}, which does not match {' or '.join(names)}"


# kind: (name prefix, record test, label, version tag, rule that allows only one such record)
_TXT_KINDS = {
    "spf": ("", re.compile(r"v=spf1(?: |$)", re.I), "SPF", "v=spf1", "RFC 7208 §4.5"),
    "dmarc": ("_dmarc.", re.compile(r"v[ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)"), "DMARC", "v=DMARC1", "RFC 7489 §6.6.3"),
    "mta_sts": ("_mta-sts.", re.compile(r"v=STSv1[ \t]*(?:;|$)"), "MTA-STS", "v=STSv1", "RFC 8461 §3.1"),
}


async def txt_present(kind: str, domain: str, config: ResolverConfig, lookups: Lookups | None = None) -> str | None:
    """None when domain publishes exactly one record of kind (spf, dmarc, mta_sts); else the reason."""
    if kind not in _TXT_KINDS:
        raise ValueError(f"unknown TXT record kind {kind!r}: expected one of {', '.join(_TXT_KINDS)}")
    prefix, test, label, start, rule = _TXT_KINDS[kind]
    name = prefix + shown(domain)
    try:
        async with _using(lookups) as asking:
            records = await asking.query(name, "TXT", config)
    except DnsError as e:  # NXDOMAIN says the record is absent; a timeout or SERVFAIL says nothing about it
        return f"no {label} record: {e}" if e.nxdomain else f"{label} record not checked: {e}"
    # RFC 7208 §3.3, RFC 7489 §6.6.3, RFC 8461 §3.1: the strings of one TXT record are joined without spaces
    texts = [text.decode("utf-8", "replace") for text in records]  # joined by the resolver
    matching = [text for text in texts if test.match(text)]
    if len(matching) == 1:
        return None
    if matching:
        return f"{len(matching)} {label} records at {name}; {rule} allows one"
    seen = "; ".join(repr(text[:60]) for text in sorted(texts)[:3]) if texts else "none"
    return f"no {label} record at {name}: no TXT record starts with {start} (TXT records: {seen})"

