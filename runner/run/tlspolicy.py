"""Judging a TLS offer (runner/net/tlsscan.py): which versions, suites, keys and key-exchange groups a plan or a
named profile (runner/run/tlsprofiles.py) allows.

Each failure names the exact version, suite, group or certificate; what is merely absent (TLS 1.3, OCSP stapling)
is a note unless the plan or profile asks for it, so a sound TLS 1.2-only server passes the defaults.
"""

from __future__ import annotations

import re
from typing import Any

from runner.net.tlsscan import Offer
from runner.plan.options import TlsOffer
from runner.run.tlsprofiles import PROFILES, Rules

__all__ = ["CLASSES", "DEFAULT_FORBID", "PROFILES", "Rules", "judge", "rules"]

# testssl.sh's classes (its run_cipherlists): LOW is single DES, RC2 and MD5 MACs outside EXPORT (RC4 has its own);
# 3DES takes IDEA with it, 64-bit blocks both (Sweet32, CVE-2016-2183), as testssl.sh's "Triple DES Ciphers / IDEA"
CLASSES = ("NULL", "EXPORT", "LOW", "RC4", "3DES", "anonymous", "CBC")
DEFAULT_FORBID = frozenset(CLASSES) - {"CBC"}


def rules(options: TlsOffer) -> Rules:
    """The step's rules: its profile's (or the defaults), each key the plan gives overriding it."""
    base = PROFILES.get(options.profile or "", Rules())
    versions = frozenset(options.versions) if options.versions is not None else base.versions
    required = versions if options.versions is not None else base.required
    given_forbid = options.forbid if options.forbid is not None else DEFAULT_FORBID
    forbid = frozenset("NULL" if c is None else c for c in given_forbid)  # YAML: a bare NULL is null
    groups = frozenset(_group_name(g) for g in options.groups) if options.groups is not None else base.groups
    keys = {key: getattr(base, key) if getattr(options, key) is None else getattr(options, key) for key in (
        "min_key_bits", "min_ecdh_bits", "min_dh_bits", "secure_renegotiation", "compression", "ocsp_stapling")}
    return Rules(versions, required, forbid, base.suites, server_order=base.server_order, profile=base.profile,
                 groups=groups, advised_groups=base.advised_groups, dh_groups=base.dh_groups,
                 good_suites=base.good_suites, **keys)


# The names OpenSSL and testssl.sh use; the plan may write the RFC 8422 / NCSC ones.
_GROUP_ALIASES = {"secp256r1": "prime256v1", "secp192r1": "prime192v1", "x25519": "X25519", "x448": "X448"}


def _group_name(name: str) -> str:
    return _GROUP_ALIASES.get(name, _GROUP_ALIASES.get(name.lower(), name))


_LOW = re.compile(r"Enc=(?:DES|RC2)\(|Mac=MD5\b")


def suite_classes(name: str, facts: dict[str, Any]) -> list[str]:
    """The forbidden-by-class families a suite belongs to, from OpenSSL's description of it."""
    cipher, desc = str(facts.get("cipher") or ""), str(facts.get("description", ""))
    found = []
    if "Enc=None" in desc or cipher == "None":
        found.append("NULL")
    if "EXP" in name.split("-") or "export" in desc.lower():
        found.append("EXPORT")
    if "EXPORT" not in found and _LOW.search(desc):
        found.append("LOW")
    if "rc4" in cipher.lower():
        found.append("RC4")
    if "des-ede3" in cipher.lower() or "DES-CBC3" in name or "Enc=IDEA(" in desc:
        found.append("3DES")
    if facts.get("auth") == "auth-null" or "Au=None" in desc:
        found.append("anonymous")
    if not facts.get("aead") and "NULL" not in found and "RC4" not in found and "CHACHA20" not in name:
        found.append("CBC")
    return found


_NOTED_ABSENT = ("TLSv1.2", "TLSv1.3")


def _version_findings(offer: Offer, want: Rules) -> tuple[list[str], list[str]]:
    failures, notes = [], []
    for version in offer.versions:
        if version not in want.versions:
            failures.append(f"{version} is offered; allowed: {', '.join(sorted(want.versions))}")
    for version in sorted(want.versions - set(offer.versions)):
        if version not in want.required and version not in _NOTED_ABSENT:
            continue  # an old version a profile merely tolerates: its absence is no news
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
    return failures + _order_findings(offer, want)


def _order_findings(offer: Offer, want: Rules) -> list[str]:
    failures = []
    for version, enforced in offer.server_order.items():
        below = [s for s in offer.versions.get(version, []) if want.good_suites and s not in want.good_suites]
        if enforced:
            continue
        if want.server_order:
            failures.append(f"{version}: the server does not enforce its own suite order ({want.profile} asks it)")
        elif below:
            failures.append(f"{version}: the server does not enforce its own suite order ({want.profile} asks it "
                            f"when suites below good are offered, as {below[0]})")
    return failures


def _group_bits(group: str) -> tuple[str, int]:
    """("finite-field", 2048) or ("curve", 256): the group's kind and size, from its name."""
    if group.startswith("ffdhe"):
        return "finite-field", int(group[5:])
    found = re.search(r"\d{3}", group)  # secp384r1, sect163k1, X25519, brainpoolP256r1, X25519MLKEM768
    return "curve", int(found[0]) if found else 0


def _group_findings(offer: Offer, want: Rules) -> tuple[list[str], list[str]]:
    """One finding per group, with the versions it is accepted under."""
    where: dict[str, list[str]] = {}
    for version, groups in offer.groups.items():
        for group in groups:
            where.setdefault(group, []).append(version)
    failures, notes = [], []
    for group, versions in where.items():
        under = f"group {group} ({', '.join(versions)})"
        kind, bits = _group_bits(group)
        least = want.min_dh_bits if kind == "finite-field" else want.min_ecdh_bits
        if bits < least:
            failures.append(f"{under} is a {bits}-bit {kind} group, under {least} bits")
        elif want.groups is not None and group not in want.groups:
            failures.append(f"{under} is not in {want.profile or 'the plan'}'s list")
        elif want.advised_groups is not None and group not in want.advised_groups:
            notes.append(f"{under} is not among {want.profile}'s curves ({', '.join(sorted(want.advised_groups))})")
    return failures, notes


def _dh_findings(offer: Offer, want: Rules) -> list[str]:
    dh = offer.dh
    if not dh:
        return []
    under = f"DH group {dh['group']} ({dh['bits']} bits, {dh['version']})"
    if dh["bits"] < want.min_dh_bits:
        return [f"{under} is under {want.min_dh_bits} bits"]
    if want.dh_groups is not None and dh["group"] not in want.dh_groups:
        return [f"{under} is not in {want.profile}'s list ({', '.join(sorted(want.dh_groups))})"]
    return []


def _feature_findings(offer: Offer, want: Rules) -> tuple[list[str], list[str]]:
    failures: list[str] = []
    notes: list[str] = []
    checks = ((offer.secure_renegotiation is False, want.secure_renegotiation == "required",
               "secure renegotiation (RFC 5746) is not supported"),
              (offer.compression not in (None, "none"), want.compression == "forbidden",
               f"TLS compression ({offer.compression}) is accepted (CRIME)"),
              (offer.ocsp_stapling is False, want.ocsp_stapling == "required", "OCSP stapling is not offered"))
    for found, fails, text in checks:
        if found:
            (failures if fails else notes).append(text)
    notes += [f"{fact}: not tried ({offer.not_tried[fact]})"
              for fact in ("secure renegotiation", "compression", "OCSP stapling") if fact in offer.not_tried]
    return failures, notes


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
    """(failures, notes), each naming the version, suite, group or certificate it is about."""
    failures, notes = _version_findings(offer, want)
    failures += _suite_findings(offer, want) + _chain_findings(offer, want) + _dh_findings(offer, want)
    for more, more_notes in (_group_findings(offer, want), _feature_findings(offer, want)):
        failures += more
        notes += more_notes
    return failures, notes
