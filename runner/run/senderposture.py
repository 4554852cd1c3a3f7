"""What decides whether a domain's own mail is trusted, judged in `expect_dns`: its DKIM keys (`dkim: {selector:
NAME}`, RFC 6376) and whether its MX addresses are on blocklists (`dnsbl: {zones: [...], address: ...}`, RFC 5782).
Each check returns its problem (None when it passes) and leaves its facts in the step's JSON details."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from runner.errors import StepFailed
from runner.net.address import ip_version
from runner.net.resolver import DnsError, Lookups, ResolverConfig
from runner.results import StepResult
from runner.run.context import StepContext

__all__ = ["dkim_problem", "dnsbl_problem"]


def _names(session: StepContext, value: Any) -> list[str]:
    """A string or a list of strings, each rendered; one may name several, separated by commas or spaces (what a
    plan variable holds: `--var dkim_selectors="s1 s2"`), which neither a selector nor a zone contains (RFC 6376
    §3.1, RFC 1035 §2.3.1); empty ones (an unset plan variable) left out."""
    given = value if isinstance(value, list) else [value] if value is not None else []
    return [name.rstrip(".") for item in given for name in _SEPARATORS.split(session.text(str(item))) if name]


_SEPARATORS = re.compile(r"[\s,]+")


async def dkim_problem(session: StepContext, want: dict[str, Any], config: ResolverConfig, domain: str,
                       out: StepResult) -> str | None:
    """Each named selector's key at `<selector>._domainkey.<domain>` (none named: each key a copy delivered earlier
    in the case was signed with, at `<s=>._domainkey.<d=>`): there, parsed, strong enough, not revoked."""
    from runner.net.dkimkey import check_key

    named = _names(session, want["dkim"].get("selector"))
    pairs = [(domain, selector) for selector in dict.fromkeys(named)] or _signed_with(session)
    warnings: list[str] = []
    if not pairs:
        warnings.append("no DKIM selector named: no key checked (selectors cannot be listed from DNS; name them "
                        "with dkim.selector)")  # nor was a copy read earlier in the case signed
    async with Lookups() as lookups:
        keys = await asyncio.gather(*(check_key(d, s, config, lookups) for d, s in pairs))
    own = domain.rstrip(".").lower()
    named_keys = [(f"selector {key.selector}" + ("" if d.lower() == own else f" of {d}"), key)
                  for (d, _), key in zip(pairs, keys, strict=True)]
    for name, key in named_keys:
        warnings += [f"{name}: {warning}" for warning in key.warnings]
    source = "plan" if named else "delivered copy" if pairs else "none"
    out.details = {**(out.details or {}), "dkim": {"domain": domain, "keys": [key.facts() for key in keys],
                                                   "selectors_from": source, "warnings": warnings}}
    for warning in warnings:
        session.warn(f"DKIM: {warning}")
    problems = [f"{name}: {error}" for name, key in named_keys for error in key.errors]
    return f"DKIM keys of {domain}: " + "; ".join(problems) if problems else None


def _signed_with(session: StepContext) -> list[tuple[str, str]]:
    """(d=, s=) of each DKIM-Signature in the copies this case's expect_delivery steps read, once each (RFC 6376
    §3.6.2.1: the key is at <s=>._domainkey.<d=>); names compared without case or a final dot."""
    seen = ((d.rstrip(".").lower(), s.rstrip(".").lower()) for d, s in session.delivered_signatures)
    return list(dict.fromkeys((d, s) for d, s in seen if d and s))


async def _addresses(session: StepContext, spec: dict[str, Any], config: ResolverConfig, domain: str,
                     lookups: Lookups) -> tuple[list[str], str | None]:
    """The addresses to look up: the one given, or every address of the domain's MX hosts; or why there are none."""
    from runner.net.dns import resolve_mx

    if spec.get("address"):
        address = session.text(str(spec["address"])).strip().strip("[]")
        if not ip_version(address):
            raise StepFailed(f"expect_dns dnsbl address: {address!r} is not an IP address")
        return [address], None
    if ip_version(domain):
        return [domain], None
    try:
        mx = await resolve_mx(domain, config, lookups)
    except DnsError as e:
        return [], f"the MX addresses of {domain} were not found: {e}"
    return list(dict.fromkeys(a for x in mx.exchangers for a in x.addresses)), None


async def _listings(session: StepContext, spec: dict[str, Any], config: ResolverConfig, domain: str,
                    zones: list[str]) -> tuple[list[str], list[Any], str | None]:
    """The addresses asked about, each one's answer from each zone, and why no address was found."""
    from runner.net.dnsbl import look_up

    if not zones:  # nothing to ask: not even the MX addresses are looked up
        return [], [], None
    async with Lookups() as lookups:
        addresses, failure = await _addresses(session, spec, config, domain, lookups)
        found = await asyncio.gather(*(look_up(a, z, config, lookups) for a in addresses for z in zones))
    return addresses, list(found), failure


async def dnsbl_problem(session: StepContext, want: dict[str, Any], config: ResolverConfig, domain: str,
                        out: StepResult) -> str | None:
    """Each MX address (or the one given) in each zone: a listing fails the step, a refused query warns."""
    spec = want["dnsbl"]
    zones = list(dict.fromkeys(_names(session, spec.get("zones"))))
    addresses, found, failure = await _listings(session, spec, config, domain, zones)
    problems = [failure] if failure else []
    warnings = [] if zones else ["no blocklist zone named: no address looked up (name the DNSBL zones with "
                                 "dnsbl.zones)"]
    for each in found:
        if each.listed or each.error:
            problems.append(each.said)
        elif each.refused:
            warnings.append(each.said)
    out.details = {**(out.details or {}), "dnsbl": {"addresses": addresses, "zones": zones,
                                                    "lookups": [each.facts() for each in found],
                                                    "listed": [each.facts() for each in found if each.listed],
                                                    "warnings": warnings}}
    for warning in warnings:
        session.warn(f"Blocklists: {warning}")
    return "Blocklists: " + "; ".join(problems) if problems else None
