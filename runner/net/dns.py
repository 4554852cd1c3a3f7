"""DNS lookups a mail test needs: MX with fallback and null MX, addresses, PTR, SPF/DMARC/MTA-STS TXT, DANE TLSA.

dnspython is imported inside the functions that query, so importing this module stays cheap. Every failure is a
DnsError whose message names the query ("NXDOMAIN for example.test MX"); every query is bounded by the timeout.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from runner.errors import SmtprunError
from runner.net.address import check_port, split_hostport
from runner.net.x509 import subject_public_key_info

__all__ = [
    "DnsError", "Exchanger", "MxResult", "ResolverConfig", "parse_nameserver", "ptr_check", "resolve_host",
    "resolve_mx", "tlsa_check", "txt_present",
]

FAMILIES = {"ipv4": "A", "ipv6": "AAAA"}
_GRACE = 0.5  # seconds beyond the resolver's own lifetime before a query is cut off regardless


@dataclass(frozen=True)
class Exchanger:
    """One mail exchanger: its name, MX preference, and addresses (or why it has none)."""

    host: str
    preference: int
    addresses: tuple[str, ...]
    error: str | None  # e.g. "NXDOMAIN for mx2.example.test A/AAAA"


@dataclass(frozen=True)
class MxResult:
    """Where mail for a domain goes, in the order a sender tries (RFC 5321 §5.1)."""

    domain: str
    exchangers: tuple[Exchanger, ...]
    implicit: bool  # no MX record: the domain's own A/AAAA, as if "MX 0 domain" (RFC 5321 §5.1)


class DnsError(SmtprunError):
    """A lookup failed; the message names the query, e.g. "SERVFAIL for example.test MX"."""


@dataclass(frozen=True)
class ResolverConfig:
    """Where and how long to ask. No nameservers means the system resolver (/etc/resolv.conf)."""

    nameservers: tuple[tuple[str, int], ...] = ()
    timeout: float = 5.0  # seconds per query, all retries included
    families: tuple[str, ...] = ("ipv4", "ipv6")

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "nameservers", tuple(_server(host, port) for host, port in self.nameservers))
        except ValueError as e:
            raise ValueError(f"invalid name server: {e}") from None
        object.__setattr__(self, "families", tuple(self.families))
        if not (isinstance(self.timeout, int | float) and math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"DNS timeout must be a positive number of seconds, not {self.timeout!r}")
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown or not self.families:
            raise ValueError(f"address families must be some of {', '.join(FAMILIES)}, not {list(self.families)}")


def _server(host: str, port: object) -> tuple[str, int]:
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    return address, check_port(port)


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
        return _server(host, 53 if port is None else int(port))
    except ValueError as e:
        raise ValueError(f"invalid name server {text!r}: {e}; {usage}") from None


@functools.lru_cache(maxsize=16)
def _resolver(config: ResolverConfig):  # -> dns.asyncresolver.Resolver
    import dns.asyncresolver
    import dns.nameserver
    import dns.resolver

    if config.nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in config.nameservers]
    else:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise DnsError("no system DNS resolver is configured (/etc/resolv.conf); give name servers") from None
    resolver.lifetime = config.timeout
    resolver.timeout = min(resolver.timeout, config.timeout)  # per attempt; lifetime bounds the retries
    resolver.cache = None
    return resolver


def _shown(name: str) -> str:
    return name if name == "." else name.rstrip(".")


async def _query(name: str, rdtype: str, config: ResolverConfig) -> list:
    """The rdata of name/rdtype; [] when the name exists without such records. Failures are DnsError."""
    import dns.exception
    import dns.resolver

    what = f"{_shown(name)} {rdtype}"
    try:
        query = _resolver(config).resolve(name, rdtype, search=False)
        answer = await asyncio.wait_for(query, config.timeout + _GRACE)
    except dns.resolver.NoAnswer:
        return []
    except dns.resolver.NXDOMAIN:
        raise DnsError(f"NXDOMAIN for {what}") from None
    except (dns.exception.Timeout, asyncio.TimeoutError):
        raise DnsError(f"DNS timeout after {config.timeout:g}s for {what}") from None
    except dns.resolver.NoNameservers as e:
        answers = [(str(server).removeprefix("Do53:"), str(error)) for server, _, _, error, _ in e.kwargs["errors"]]
        kinds = {error for _, error in answers}
        if len(kinds) == 1 and kinds <= {"SERVFAIL", "REFUSED", "NOTIMP", "FORMERR"}:
            raise DnsError(f"{kinds.pop()} for {what}") from None
        details = "; ".join(f"{server}: {error}" for server, error in answers) or "no name server left to ask"
        raise DnsError(f"no name server answered {what} ({details})") from None
    except dns.exception.DNSException as e:
        raise DnsError(f"DNS error for {what}: {e}") from None
    return list(answer)


async def _addresses(host: str, config: ResolverConfig, families: tuple[str, ...] = ()) -> tuple[tuple[str, ...], str]:
    """Addresses of host in the configured families' order, and, when there are none, why."""
    rdtypes = [FAMILIES[f] for f in families or config.families]
    joined = "/".join(rdtypes)
    found = await asyncio.gather(*(_query(host, t, config) for t in rdtypes), return_exceptions=True)
    addresses: list[str] = []
    reasons: list[str] = []
    for rdtype, result in zip(rdtypes, found, strict=True):
        if isinstance(result, DnsError):  # "NXDOMAIN for h A" and "... h AAAA" read better as one "h A/AAAA"
            reason = str(result).replace(f"{_shown(host)} {rdtype}", f"{_shown(host)} {joined}")
            reasons += [reason] if reason not in reasons else []
        elif isinstance(result, BaseException):
            raise result
        else:
            addresses += [rdata.address for rdata in result]
    if addresses:
        return tuple(addresses), ""
    return (), "; ".join(reasons) or f"no {joined} record for {_shown(host)}"


async def resolve_host(host: str, config: ResolverConfig) -> tuple[str, ...]:
    """The addresses of host in the configured families; an IP literal is returned as is."""
    try:
        ipaddress.ip_address(host)
        return (host,)
    except ValueError:
        pass
    addresses, reason = await _addresses(host, config)
    if not addresses:
        raise DnsError(reason)
    return addresses


async def resolve_mx(domain: str, config: ResolverConfig) -> MxResult:
    """The exchangers for domain in delivery order, each with its addresses (RFC 5321 §5.1)."""
    import dns.name

    shown = _shown(domain)
    records = await _query(domain, "MX", config)
    if not records:  # RFC 5321 §5.1: no MX, so the domain itself is the exchanger, preference 0
        addresses, reason = await _addresses(domain, config)
        if not addresses:
            raise DnsError(f"no MX record and {reason} (RFC 5321 §5.1)" if reason.startswith("no ") else reason)
        return MxResult(shown, (Exchanger(shown, 0, addresses, None),), implicit=True)
    if any(rdata.exchange == dns.name.root for rdata in records):
        extra = "" if len(records) == 1 else " (it also lists other MX records, which RFC 7505 §3 forbids)"
        raise DnsError(f"null MX (RFC 7505): {shown} accepts no mail{extra}")
    ordered: list[tuple[int, str]] = []
    for preference in sorted({rdata.preference for rdata in records}):
        hosts = [_shown(rdata.exchange.to_text()) for rdata in records if rdata.preference == preference]
        random.shuffle(hosts)  # RFC 5321 §5.1: equal preferences are tried in random order
        ordered += [(preference, host) for host in hosts]
    found = await asyncio.gather(*(_addresses(host, config) for _, host in ordered))
    exchangers = tuple(
        Exchanger(host, preference, addresses, reason or None)
        for (preference, host), (addresses, reason) in zip(ordered, found, strict=True)
    )
    return MxResult(shown, exchangers, implicit=False)


async def ptr_check(address: str, names: list[str], config: ResolverConfig) -> str | None:
    """None when address has a PTR that resolves back to it (forward-confirmed) and equals one of names
    (the banner host or EHLO name; any forward-confirmed PTR passes when names is empty); else the reason."""
    import dns.reversename

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"not an IP address: {address!r}") from None
    reverse = dns.reversename.from_address(str(ip)).to_text(omit_final_dot=True)
    try:
        ptrs = [_shown(rdata.target.to_text()) for rdata in await _query(reverse, "PTR", config)]
    except DnsError as e:
        return (f"no PTR record for {address}: {e}" if str(e).startswith("NXDOMAIN")
                else f"PTR record for {address} not checked: {e}")
    if not ptrs:
        return f"no PTR record for {address} ({reverse})"
    family = "ipv4" if ip.version == 4 else "ipv6"
    forward = await asyncio.gather(*(_addresses(name, config, (family,)) for name in ptrs))
    confirmed, notes = [], []
    for name, (found, reason) in zip(ptrs, forward, strict=True):
        if any(ipaddress.ip_address(a) == ip for a in found):
            confirmed.append(name)
        else:
            notes.append(reason or f"{name} {FAMILIES[family]} is {', '.join(found)}")
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


async def txt_present(kind: str, domain: str, config: ResolverConfig) -> str | None:
    """None when domain publishes exactly one record of kind (spf, dmarc, mta_sts); else the reason."""
    if kind not in _TXT_KINDS:
        raise ValueError(f"unknown TXT record kind {kind!r}: expected one of {', '.join(_TXT_KINDS)}")
    prefix, test, label, start, rule = _TXT_KINDS[kind]
    name = prefix + _shown(domain)
    try:
        records = await _query(name, "TXT", config)
    except DnsError as e:  # NXDOMAIN says the record is absent; a timeout or SERVFAIL says nothing about it
        return f"no {label} record: {e}" if str(e).startswith("NXDOMAIN") else f"{label} record not checked: {e}"
    # RFC 7208 §3.3, RFC 7489 §6.6.3, RFC 8461 §3.1: the strings of one TXT record are joined without spaces
    texts = [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in records]
    matching = [text for text in texts if test.match(text)]
    if len(matching) == 1:
        return None
    if matching:
        return f"{len(matching)} {label} records at {name}; {rule} allows one"
    seen = "; ".join(repr(text[:60]) for text in sorted(texts)[:3]) if texts else "none"
    return f"no {label} record at {name}: no TXT record starts with {start} (TXT records: {seen})"


_SELECTORS = {0: "DER", 1: "SPKI"}  # RFC 6698 §2.1.2: the full certificate or its SubjectPublicKeyInfo
_MATCHING = {0: ("exact", None), 1: ("SHA-256", "sha256"), 2: ("SHA-512", "sha512")}  # RFC 6698 §2.1.3


async def tlsa_check(host: str, port: int, cert_chain_der: list[bytes], config: ResolverConfig) -> str | None:
    """None when a TLSA record at _<port>._tcp.<host> matches the chain (end-entity first); else the reason.

    DANE-EE (3) is matched against the end-entity certificate, DANE-TA (2) against any certificate given
    (RFC 7672 §3.1); PKIX usages (0, 1) are not checked. DNSSEC validation (RFC 7672 §2.2) is left to the resolver.
    """
    name = f"_{port}._tcp.{_shown(host)}"
    try:
        records = await _query(name, "TLSA", config)
    except DnsError as e:
        return f"no TLSA record: {e}"
    if not records:
        return f"no TLSA record at {name}"
    if not cert_chain_der:
        return f"no certificate to compare with the TLSA records at {name}"
    compared = []
    for rdata in records:
        shown = f"TLSA {rdata.usage} {rdata.selector} {rdata.mtype} {rdata.cert.hex()[:16]}..."
        if rdata.usage in (0, 1):
            compared.append(f"{shown}: usage {rdata.usage} (PKIX) not checked")
            continue
        if rdata.usage not in (2, 3) or rdata.selector not in _SELECTORS or rdata.mtype not in _MATCHING:
            compared.append(f"{shown}: unsupported usage, selector or matching type (RFC 6698 §2.1)")
            continue
        certs = cert_chain_der[:1] if rdata.usage == 3 else cert_chain_der
        method, algorithm = _MATCHING[rdata.mtype]
        values = []
        for index, der in enumerate(certs):
            try:
                data = der if rdata.selector == 0 else subject_public_key_info(der)
            except ValueError as e:
                values.append(f"certificate {index}: {e}")
                continue
            value = hashlib.new(algorithm, data).digest() if algorithm else data
            if value == rdata.cert:
                return None
            values.append(value.hex()[:16] + "...")
        which = "end-entity certificate's" if rdata.usage == 3 else "chain certificates'"
        of = f"{method} of " if algorithm else ""
        compared.append(f"{shown}: {of}the {which} {_SELECTORS[rdata.selector]} is {', '.join(values)}")
    return f"no TLSA record at {name} matches: " + "; ".join(compared)
