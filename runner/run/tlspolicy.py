"""Judging a TLS offer (runner/net/tlsscan.py): which versions, suites and keys a plan or a named profile allows.

Each failure names the exact version, suite or certificate; what is merely absent (TLS 1.3, OCSP stapling) is a
note unless the plan or profile asks for it, so a sound TLS 1.2-only server passes the defaults.

The Mozilla profiles are Mozilla's "Server Side TLS" guidelines, version 5.7
(https://wiki.mozilla.org/Security/Server_Side_TLS, https://ssl-config.mozilla.org/guidelines/5.7.json):
modern is TLS 1.3 only; intermediate is TLS 1.2 and 1.3 with the nine AEAD suites below and RSA keys of 2048 bits
or more; old adds TLS 1.0/1.1 and the CBC suites down to DES-CBC3-SHA, and asks the server to enforce its order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.net.tlsscan import Offer

__all__ = ["CLASSES", "DEFAULT_FORBID", "PROFILES", "Rules", "judge", "rules"]

_INTERMEDIATE = ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                 "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
                 "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305")
_OLD = (*_INTERMEDIATE, "ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384", "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA", "DHE-RSA-AES128-SHA256", "DHE-RSA-AES256-SHA256", "AES128-GCM-SHA256",
        "AES256-GCM-SHA384", "AES128-SHA256", "AES256-SHA256", "AES128-SHA", "AES256-SHA", "DES-CBC3-SHA")
_TLS13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")


@dataclass(frozen=True)
class Rules:
    versions: frozenset[str] = frozenset({"TLSv1.2", "TLSv1.3"})
    required: frozenset[str] = frozenset({"TLSv1.2"})  # versions whose absence fails; the others' absence is a note
    forbid: frozenset[str] = frozenset()
    suites: frozenset[str] | None = None  # the only suites allowed (a profile's list), None: any not forbidden
    min_key_bits: int = 2048  # RSA and DSA keys (NIST SP 800-57 Part 1 Rev. 5 §5.6.1: 112-bit security)
    server_order: bool = False  # the server must enforce its own order
    profile: str = ""


PROFILES: dict[str, Rules] = {
    "mozilla-modern": Rules(frozenset({"TLSv1.3"}), frozenset({"TLSv1.3"}), suites=frozenset(_TLS13),
                            profile="mozilla-modern"),
    "mozilla-intermediate": Rules(suites=frozenset((*_INTERMEDIATE, *_TLS13)), profile="mozilla-intermediate"),
    "mozilla-old": Rules(frozenset({"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}), suites=frozenset((*_OLD, *_TLS13)),
                         server_order=True, profile="mozilla-old"),
}

CLASSES = ("NULL", "EXPORT", "RC4", "3DES", "anonymous", "CBC")
DEFAULT_FORBID = frozenset(CLASSES) - {"CBC"}


def rules(options: dict[str, Any]) -> Rules:
    """The step's rules: its profile's (or the defaults), each key the plan gives overriding it."""
    base = PROFILES.get(options.get("profile", ""), Rules())
    versions = frozenset(options["versions"]) if "versions" in options else base.versions
    required = versions if "versions" in options else base.required
    forbid = frozenset("NULL" if c is None else c for c in options.get("forbid", DEFAULT_FORBID))  # YAML: NULL is null
    return Rules(versions, required, forbid, base.suites, options.get("min_key_bits", base.min_key_bits),
                 base.server_order, base.profile)


def suite_classes(name: str, facts: dict[str, Any]) -> list[str]:
    """The forbidden-by-class families a suite belongs to, from OpenSSL's description of it."""
    cipher, desc = str(facts.get("cipher") or ""), str(facts.get("description", ""))
    found = []
    if "Enc=None" in desc or cipher == "None":
        found.append("NULL")
    if "EXP" in name.split("-") or "export" in desc.lower():
        found.append("EXPORT")
    if "rc4" in cipher.lower():
        found.append("RC4")
    if "des-ede3" in cipher.lower() or "DES-CBC3" in name:
        found.append("3DES")
    if facts.get("auth") == "auth-null" or "Au=None" in desc:
        found.append("anonymous")
    if not facts.get("aead") and "NULL" not in found and "RC4" not in found and "CHACHA20" not in name:
        found.append("CBC")
    return found


def _version_findings(offer: Offer, want: Rules) -> tuple[list[str], list[str]]:
    failures, notes = [], []
    for version in offer.versions:
        if version not in want.versions:
            failures.append(f"{version} is offered; allowed: {', '.join(sorted(want.versions))}")
    for version in sorted(want.versions - set(offer.versions)):
        where = failures if version in want.required else notes
        why = offer.not_tried.get(version)
        where.append(f"{version} is not offered" + (f" (not tried: {why})" if why else ""))
    return failures, notes


def _suite_findings(offer: Offer, want: Rules) -> list[str]:
    """One finding per suite, with the versions it is offered under."""
    where: dict[str, list[str]] = {}
    for version, suites in offer.versions.items():
        for name in suites:
            where.setdefault(name, []).append(version)
    failures = []
    for name, versions in where.items():
        under = f"suite {name} ({', '.join(versions)})"
        bad = [c for c in suite_classes(name, offer.suites.get(name, {})) if c in want.forbid]
        if bad:
            failures.append(f"{under} is {' and '.join(bad)} (forbidden)")
        elif want.suites is not None and name not in want.suites:
            failures.append(f"{under} is not in {want.profile}'s list")
    if want.server_order:
        failures += [f"{version}: the server does not enforce its own suite order ({want.profile} asks it)"
                     for version, enforced in offer.server_order.items() if not enforced]
    return failures


def _chain_findings(offer: Offer, want: Rules) -> list[str]:
    failures = list(offer.verification.get("problems", []))
    for n, cert in enumerate(offer.chain, start=1):
        if cert["key"] in ("RSA", "DSA") and cert["key_bits"] < want.min_key_bits:
            failures.append(f"certificate {n} ({cert['subject']}): {cert['key']} key of {cert['key_bits']} bits, "
                            f"under {want.min_key_bits}")
        if cert["days_left"] < 0:
            failures.append(f"certificate {n} ({cert['subject']}) expired on {cert['not_after']}")
    return failures


def judge(offer: Offer, want: Rules) -> tuple[list[str], list[str]]:
    """(failures, notes), each naming the version, suite or certificate it is about."""
    failures, notes = _version_findings(offer, want)
    failures += _suite_findings(offer, want) + _chain_findings(offer, want)
    notes.append("OCSP stapling: not checked (Python's ssl cannot ask for a stapled response)")
    return failures, notes
