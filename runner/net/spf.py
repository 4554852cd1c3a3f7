"""SPF evaluated (RFC 7208) through the run's resolver: the whole include/redirect tree walked, its DNS-lookup and
void-lookup counts (§4.6.4), every error by name, and check_host() for one address.

The record is judged as a whole, as checkdmarc and the hosted checkers judge it: a tree over the lookup limit is
a permerror whatever address is asked about, since a receiver may meet the limit before it reaches the sender's
mechanism. Every term is walked even after the address matched, so the counts and the tree are the record's.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from runner.net.resolver import DnsError, Lookups, ResolverConfig, shown
from runner.net.spfrecord import SpfRecord, Term, expand, parse

__all__ = ["MAX_LOOKUPS", "MAX_VOID_LOOKUPS", "SpfCheck", "check_spf"]

MAX_LOOKUPS = 10  # RFC 7208 §4.6.4: include, a, mx, ptr, exists and redirect; exp= is not counted
MAX_VOID_LOOKUPS = 2  # RFC 7208 §4.6.4: lookups answered NXDOMAIN or with no records
MAX_MX_ADDRESSES = 10  # RFC 7208 §4.6.4: address lookups per mx mechanism (and per ptr)
_FOLLOW_AT_MOST = 40  # lookups walked to show a tree over the limit, so a loop or a huge tree stays bounded
_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


@dataclass
class SpfCheck:
    """What smtprun found of a domain's SPF: the JSON facts of an `expect_dns: {spf: ...}` step."""

    domain: str
    ip: str
    record: str | None = None
    result: str = "none"
    lookups: int = 0
    void_lookups: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tree: dict[str, Any] | None = None

    def facts(self) -> dict[str, Any]:
        return {"domain": self.domain, "ip": self.ip, "record": self.record, "result": self.result,
                "lookups": self.lookups, "void_lookups": self.void_lookups, "errors": self.errors,
                "warnings": self.warnings, "tree": self.tree}


@dataclass
class _Walk:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    sender: str
    config: ResolverConfig
    lookups: Lookups
    count: int = 0
    void: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    broken: bool = False  # an error that makes check_host() a permerror, not merely a bad posture (+all)

    def fail(self, error: str) -> None:
        self.errors.append(error)
        self.broken = True


async def check_spf(domain: str, ip: str, config: ResolverConfig, lookups: Lookups,
                    sender: str = "") -> SpfCheck:
    """check_host(ip, domain, sender) (RFC 7208 §4) with the whole tree's counts and errors."""
    name = shown(domain).lower()
    walk = _Walk(ipaddress.ip_address(ip), sender or f"postmaster@{name}", config, lookups)
    node = await _node(walk, name, ())
    check = SpfCheck(name, ip, node.get("record"), node["result"], walk.count, walk.void,
                     walk.errors, walk.warnings, node)
    if walk.count > MAX_LOOKUPS:
        walk.fail(f"{walk.count} DNS lookups, over the limit of {MAX_LOOKUPS} (RFC 7208 §4.6.4)")
    if walk.void > MAX_VOID_LOOKUPS:
        walk.fail(f"{walk.void} void DNS lookups, over the limit of {MAX_VOID_LOOKUPS} (RFC 7208 §4.6.4)")
    # a receiver stops at the limit with a permerror (RFC 7208 §4.6.4), before a later lookup could fail
    if walk.broken and check.result != "none":
        check.result = "permerror"
    return check


def _at(chain: tuple[str, ...]) -> str:
    """How an error names the record it is in: an included or redirected one by its domain, the top one not."""
    return f"{chain[-1]}: " if len(chain) > 1 else ""


async def _records(walk: _Walk, domain: str) -> tuple[list[str], str | None]:
    """The v=spf1 records at domain (RFC 7208 §4.5), and why none could be asked for (a temperror)."""
    try:
        texts = await walk.lookups.query(domain, "TXT", walk.config)
    except DnsError as e:
        if e.nxdomain:
            return [], None
        return [], str(e)
    found = [t.decode("utf-8", "replace") for t in texts]
    return [t for t in found if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")], None


async def _node(walk: _Walk, domain: str, chain: tuple[str, ...]) -> dict[str, Any]:
    """One record of the tree: its text, counts, what it includes and redirects to, and its result for ip."""
    node: dict[str, Any] = {"domain": domain, "record": None, "result": "none", "include": []}
    records, failed = await _records(walk, domain)
    if failed:
        walk.errors.append(f"SPF record of {domain} not read: {failed}")
        node["result"] = "temperror"
        return node
    if not records:
        return node
    if len(records) > 1:
        walk.fail(f"{len(records)} SPF records at {domain}; RFC 7208 §4.5 allows one")
        node["records"] = records
        node["result"] = "permerror"
        return node
    record = parse(records[0])
    node["record"] = record.text
    for error in record.errors:
        walk.fail(_at((*chain, domain)) + error)
    walk.errors += [_at((*chain, domain)) + e for e in record.unsafe]
    walk.warnings += [_at((*chain, domain)) + w for w in record.warnings]
    node["result"] = "permerror" if record.errors else await _terms(walk, record, node, (*chain, domain))
    return node


async def _terms(walk: _Walk, record: SpfRecord, node: dict[str, Any], chain: tuple[str, ...]) -> str:
    """Each mechanism in order (all of them, for the counts), then redirect= when nothing matched (RFC 7208 §6.1)."""
    result: str | None = None
    for term in record.mechanisms:
        outcome = await _mechanism(walk, term, node, chain)
        if result is None and outcome is not None:
            result = outcome
    redirect = record.modifier("redirect")
    if redirect is not None and any(t.name == "all" for t in record.mechanisms):
        walk.warnings.append(_at(chain) + "redirect= is ignored beside an all mechanism (RFC 7208 §6.1)")
    elif redirect is not None:
        target = await _target(walk, redirect, chain, "redirect")
        if target is not None:
            child = await _node(walk, target, chain)
            node["redirect"] = child
            if result is None:  # RFC 7208 §6.1: a redirect to no SPF record is a permerror
                result = "permerror" if child["result"] == "none" else child["result"]
    return result or "neutral"  # RFC 7208 §4.7: no match, no redirect


async def _target(walk: _Walk, term: Term, chain: tuple[str, ...], what: str) -> str | None:
    """The domain an include or redirect names, counted as a lookup; None (and why) when it is not followed."""
    walk.count += 1
    target = shown(expand(term.value, walk.sender, chain[-1], str(walk.ip))).lower()
    if target in chain:
        walk.fail(f"{what} loop: {' -> '.join((*chain, target))} (RFC 7208 §5.2, §6.1)")
        return None
    if walk.count > _FOLLOW_AT_MOST:
        return None
    return target


async def _mechanism(walk: _Walk, term: Term, node: dict[str, Any], chain: tuple[str, ...]) -> str | None:
    """The mechanism's result when it matches ip (RFC 7208 §4.6.2), else None."""
    qualified = _QUALIFIERS[term.qualifier]
    if term.name == "all":
        return qualified
    if term.name in ("ip4", "ip6"):
        return qualified if walk.ip in ipaddress.ip_network(term.value, strict=False) else None
    if term.name == "include":
        return await _include(walk, term, node, chain)
    walk.count += 1
    domain = shown(expand(term.value, walk.sender, chain[-1], str(walk.ip))).lower() if term.value else chain[-1]
    try:
        matched = await _matches(walk, term, domain)
    except DnsError as e:  # RFC 7208 §5: a lookup that failed, not one that found nothing, is a temperror
        walk.errors.append(_at(chain) + f"{term.text}: {e}")
        return "temperror"
    return qualified if matched else None


async def _include(walk: _Walk, term: Term, node: dict[str, Any], chain: tuple[str, ...]) -> str | None:
    """include: matches when the included record passes; its none is a permerror (RFC 7208 §5.2)."""
    target = await _target(walk, term, chain, "include")
    if target is None:
        return None
    child = await _node(walk, target, chain)
    node["include"].append(child)
    if child["record"] is None and child["result"] == "none":
        walk.void += 1
        walk.fail(_at(chain) + f"{term.text}: {target} has no SPF record (RFC 7208 §5.2)")
        return "permerror"
    if child["result"] in ("permerror", "temperror"):
        return child["result"]
    return _QUALIFIERS[term.qualifier] if child["result"] == "pass" else None


async def _matches(walk: _Walk, term: Term, domain: str) -> bool:
    if term.name == "a":
        return _within(walk.ip, await _addresses(walk, domain, count_void=True), term)
    if term.name == "exists":  # RFC 7208 §5.7: an A query, whatever the address's family
        return bool(await _answer(walk, domain, "A", count_void=True))
    if term.name == "mx":
        return await _mx(walk, term, domain)
    return await _ptr(walk, domain)


async def _answer(walk: _Walk, name: str, rdtype: str, count_void: bool) -> list[Any]:
    """The records; NXDOMAIN is an empty answer, counted as void when the term's own lookup found nothing."""
    try:
        values = await walk.lookups.query(name, rdtype, walk.config)
    except DnsError as e:
        if not e.nxdomain:
            raise
        values = []
    if count_void and not values:
        walk.void += 1
    return values


async def _addresses(walk: _Walk, name: str, count_void: bool) -> list[str]:
    """The addresses of the ip's family (RFC 7208 §5.3: A for IPv4, AAAA for IPv6)."""
    return await _answer(walk, name, "A" if walk.ip.version == 4 else "AAAA", count_void)


def _within(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, addresses: list[str], term: Term) -> bool:
    length = term.cidr4 if ip.version == 4 else term.cidr6
    for address in addresses:
        prefix = length if length is not None else (32 if ip.version == 4 else 128)
        if ip in ipaddress.ip_network(f"{address}/{prefix}", strict=False):
            return True
    return False


async def _mx(walk: _Walk, term: Term, domain: str) -> bool:
    exchanges = [shown(host) for _, host in await _answer(walk, domain, "MX", count_void=True) if host != "."]
    if len(exchanges) > MAX_MX_ADDRESSES:
        walk.fail(f"{term.text}: {domain} has {len(exchanges)} MX hosts, over the {MAX_MX_ADDRESSES} "
                           "an mx mechanism may look up (RFC 7208 §4.6.4)")
    for host in exchanges[:MAX_MX_ADDRESSES]:
        if _within(walk.ip, await _addresses(walk, host, count_void=False), term):
            return True
    return False


async def _ptr(walk: _Walk, domain: str) -> bool:
    """ptr (RFC 7208 §5.5): a validated name of ip within domain; at most 10 names are checked."""
    names = [shown(n).lower() for n in await _answer(walk, walk.ip.reverse_pointer, "PTR", count_void=False)]
    for name in names[:MAX_MX_ADDRESSES]:
        if (name == domain or name.endswith("." + domain)) and str(walk.ip) in [
                str(ipaddress.ip_address(a)) for a in await _addresses(walk, name, count_void=False)]:
            return True
    return False
