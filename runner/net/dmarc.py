"""DMARC evaluated (RFC 7489) through the run's resolver: the record at `_dmarc.<domain>` or inherited from the
organisational domain (§6.6.3, the public-suffix list of `publicsuffixlist`), every tag checked, and external
report destinations authorised by `<domain>._report._dmarc.<destination>` (§7.1)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from runner.net.resolver import DnsError, Lookups, ResolverConfig, shown

__all__ = ["DmarcCheck", "check_dmarc", "organisational_domain", "parse_tags"]

_VERSION = re.compile(r"^v[ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)")  # RFC 7489 §6.4: v= first, exactly DMARC1
_POLICIES = ("none", "quarantine", "reject")  # RFC 7489 §6.3
_ALIGNMENT = ("r", "s")
_FO = re.compile(r"^[01ds](?::[01ds])*$")
_URI = re.compile(r"^mailto:([^@!,\s]+@([^!,\s]+))(?:!\d+[kmgt]?)?$", re.I)  # RFC 7489 §6.2 (mailto only)
_KNOWN = ("v", "p", "sp", "pct", "adkim", "aspf", "rua", "ruf", "fo", "rf", "ri")
_BIS = ("np", "psd", "t")  # DMARCbis' new tags (np= for non-existent subdomains; pct= becomes t=)


@functools.lru_cache(maxsize=1)
def _suffixes() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def organisational_domain(domain: str) -> str:
    """The organisational domain (RFC 7489 §3.2): the public suffix and one label more; a name under a top-level
    domain the list does not know (such as `.test`) counts its last label as the suffix."""
    name = shown(domain).lower()
    return _suffixes().privatesuffix(name) or name


@dataclass
class DmarcCheck:
    """The JSON facts of an `expect_dns: {dmarc: ...}` step."""

    domain: str
    location: str | None = None  # where the record was found: _dmarc.<domain> or _dmarc.<organisational domain>
    record: str | None = None
    inherited: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def policy(self) -> str | None:
        """The policy applied to the domain: sp= for a subdomain that inherits (§6.3), else p=."""
        if self.inherited and "sp" in self.tags:
            return self.tags["sp"]
        return self.tags.get("p")

    def facts(self) -> dict[str, Any]:
        """The record's tags with RFC 7489 §6.3's defaults (sp as p, pct 100, relaxed alignment)."""
        tags = self.tags
        pct = tags.get("pct", "100")
        return {"domain": self.domain, "location": self.location, "record": self.record, "inherited": self.inherited,
                "p": tags.get("p"), "sp": tags.get("sp", tags.get("p")), "pct": int(pct) if pct.isdigit() else pct,
                "adkim": tags.get("adkim", "r"), "aspf": tags.get("aspf", "r"), "rua": _uris(tags.get("rua")),
                "ruf": _uris(tags.get("ruf")), "policy": self.policy, "errors": self.errors, "warnings": self.warnings}


def _uris(value: str | None) -> list[str]:
    return [uri.strip() for uri in value.split(",")] if value else []


async def check_dmarc(domain: str, config: ResolverConfig, lookups: Lookups) -> DmarcCheck:
    """The domain's DMARC record, found as a receiver finds it (RFC 7489 §6.6.3), and judged tag by tag."""
    name = shown(domain).lower()
    check = DmarcCheck(name)
    org = organisational_domain(name)
    for where in dict.fromkeys((name, org)):
        records = await _records(check, f"_dmarc.{where}", config, lookups)
        if records is None:
            return check
        if records:
            check.location, check.inherited = f"_dmarc.{where}", where != name
            break
    else:
        tried = " or ".join(f"_dmarc.{d}" for d in dict.fromkeys((name, org)))
        check.errors.append(f"no DMARC record at {tried} (RFC 7489 §6.6.3)")
        return check
    if len(records) > 1:
        check.errors.append(f"{len(records)} DMARC records at {check.location}; RFC 7489 §6.6.3 allows one")
        return check
    check.record = records[0]
    check.tags = parse_tags(check.record, check.errors, check.warnings)
    await _authorised(check, org if check.inherited else name, config, lookups)
    return check


async def _records(check: DmarcCheck, name: str, config: ResolverConfig, lookups: Lookups) -> list[str] | None:
    """The v=DMARC1 records at name; None (the error noted) when the name servers could not say."""
    try:
        texts = await lookups.query(name, "TXT", config)
    except DnsError as e:
        if e.nxdomain:
            return []
        check.errors.append(f"DMARC record not checked: {e}")
        return None
    found = [t.decode("utf-8", "replace") for t in texts]
    return [t for t in found if _VERSION.match(t)]


def parse_tags(record: str, errors: list[str], warnings: list[str]) -> dict[str, str]:
    """The record's tags (RFC 7489 §6.3, §6.4), each value checked; problems appended to errors and warnings."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        if not part.strip():
            continue
        tag, equals, value = (piece.strip() for piece in part.partition("="))
        if not equals or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", tag):
            errors.append(f"{part.strip()!r} is not a tag=value pair (RFC 7489 §6.4)")
            continue
        tag = tag.lower()
        if tag in tags:
            errors.append(f"the tag {tag}= appears twice (RFC 7489 §6.4)")
        elif tag in _BIS:
            warnings.append(f"{tag}= is DMARCbis', not RFC 7489's: receivers of RFC 7489 ignore it")
        elif tag not in _KNOWN:
            warnings.append(f"unknown tag {tag}=, ignored (RFC 7489 §6.3)")
        tags[tag] = value
    _check_values(tags, errors, warnings)
    return tags


def _check_values(tags: dict[str, str], errors: list[str], warnings: list[str]) -> None:
    if "p" not in tags:
        errors.append("no p= tag: the policy is required (RFC 7489 §6.3)")
    for tag in ("p", "sp", "adkim", "aspf"):
        allowed = _POLICIES if tag in ("p", "sp") else _ALIGNMENT
        if tag in tags and tags[tag].lower() not in allowed:
            what = "a policy" if tag in ("p", "sp") else "an alignment mode"
            errors.append(f"{tag}={tags[tag]} is not {what}: {', '.join(allowed)} (RFC 7489 §6.3)")
    _check_numbers(tags, errors, warnings)
    for tag in ("rua", "ruf"):
        for uri in _uris(tags.get(tag)):
            if not _URI.match(uri):
                errors.append(f"{tag}: {uri!r} is not a mailto: URI (RFC 7489 §6.2, §6.3)")


def _check_numbers(tags: dict[str, str], errors: list[str], warnings: list[str]) -> None:
    pct = tags.get("pct")
    if pct is not None and not (pct.isdigit() and 0 <= int(pct) <= 100):
        errors.append(f"pct={pct} is not a whole number from 0 to 100 (RFC 7489 §6.3)")
    elif pct is not None and int(pct) < 100:
        warnings.append(f"pct={pct}: the policy applies to {pct}% of failing mail only (RFC 7489 §6.6.4)")
    if "fo" in tags and not _FO.match(tags["fo"]):
        errors.append(f"fo={tags['fo']} is not a list of 0, 1, d and s (RFC 7489 §6.3)")
    if "ri" in tags and not tags["ri"].isdigit():
        errors.append(f"ri={tags['ri']} is not a number of seconds (RFC 7489 §6.3)")


async def _authorised(check: DmarcCheck, owner: str, config: ResolverConfig, lookups: Lookups) -> None:
    """Each report address outside the owner's organisational domain is authorised by a DMARC record at
    `<owner>._report._dmarc.<destination>` (RFC 7489 §7.1); unauthorised, a receiver sends it no report."""
    for tag, destination in _external(check, owner):
        name = f"{owner}._report._dmarc.{destination}"
        try:
            texts = await lookups.query(name, "TXT", config)
        except DnsError as e:
            if not e.nxdomain:
                check.errors.append(f"{tag} destination {destination} not checked: {e}")
                continue
            texts = []
        if not any(_VERSION.match(t.decode("utf-8", "replace")) for t in texts):
            check.errors.append(f"{tag} destination {destination} has not authorised reports for {owner}: "
                                f"no v=DMARC1 record at {name} (RFC 7489 §7.1)")


def _external(check: DmarcCheck, owner: str) -> list[tuple[str, str]]:
    """(tag, destination domain) of each valid report URI outside the owner's organisational domain, once each."""
    own = organisational_domain(owner)
    found: dict[tuple[str, str], None] = {}
    for tag in ("rua", "ruf"):
        for uri in _uris(check.tags.get(tag)):
            match = _URI.match(uri)
            destination = match.group(2).lower().rstrip(".") if match else ""
            if destination and organisational_domain(destination) != own:
                found[(tag, destination)] = None
    return list(found)
