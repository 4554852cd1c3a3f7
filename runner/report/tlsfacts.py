"""A tls_offer step's facts (its `details`, runner/run/tlsoffer.py) laid out for the HTML page: suites × versions in
the server's order, groups × versions, the key exchange and ServerHello answers, the chain with days left; each
row that a failure names is marked, and every string that came from the server is made printable here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.report.format import printable

__all__ = ["OfferView", "offer_view"]

VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(frozen=True)
class OfferRow:
    name: str
    cells: list[str]  # per version: the place in the server's order ("1", "2", ...) or ""
    extra: str  # the suite's IANA code, a group's kind
    failed: bool


@dataclass(frozen=True)
class OfferView:
    index: int  # the step's number
    versions: list[str]  # the columns: the versions accepted
    suites: list[OfferRow]
    groups: list[OfferRow]
    facts: list[tuple[str, str, str]]  # label, value, css ("fail", "warn" or "")
    chain: list[tuple[str, ...]]  # n, subject, issuer, key, signature, not after, days left, css
    failures: list[str]
    warnings: list[str]


def _rows(by_version: dict[str, list[str]], versions: list[str], marked: str, failures: list[str],
          extra: dict[str, str]) -> list[OfferRow]:
    names: list[str] = []
    for version in versions:
        names += [n for n in by_version.get(version, []) if n not in names]
    rows = []
    for name in names:
        cells = [str(by_version[v].index(name) + 1) if name in by_version.get(v, []) else "" for v in versions]
        failed = any(f.startswith(f"{marked} {name} (") for f in failures)
        rows.append(OfferRow(printable(name), cells, printable(extra.get(name, "")), failed))
    return rows


def _mark(fact: str, failures: list[str], warnings: list[str]) -> str:
    if any(fact in f for f in failures):
        return "fail"
    return "warn" if any(fact in w for w in warnings) else ""


def _facts(d: dict[str, Any], failures: list[str], warnings: list[str]) -> list[tuple[str, str, str]]:
    said = {True: "yes", False: "no", None: "not tried"}
    rows = []
    dh = d.get("dh") or {}
    if dh:
        rows.append(("DH (DHE suites)", f"{dh.get('group')} ({dh.get('bits')} bits, {dh.get('version')})",
                     _mark("DH group", failures, warnings)))
    rows += [
        ("server order", said[d.get("server_order")] if isinstance(d.get("server_order"), bool) else "—",
         _mark("own suite order", failures, warnings)),
        ("secure renegotiation (RFC 5746)", said.get(d.get("secure_renegotiation"), "—"),
         _mark("secure renegotiation", failures, warnings)),
        ("TLS compression", str(d.get("compression") or "not tried"), _mark("compression", failures, warnings)),
        ("OCSP stapling", said.get(d.get("ocsp_stapling"), "—"), _mark("OCSP stapling", failures, warnings)),
        ("scan", f"{d.get('connections', 0)} connections in {d.get('seconds', 0)}s"
                 + (f", rate-limited {d['rate_limited']} times" if d.get("rate_limited") else ""), ""),
    ]
    rows += [(f"not tried: {what}", why, "") for what, why in (d.get("not_tried") or {}).items()]
    return [(printable(k), printable(str(v)), css) for k, v, css in rows]


def _chain(chain: list[dict[str, Any]], failures: list[str]) -> list[tuple[str, ...]]:
    rows = []
    for n, cert in enumerate(chain, start=1):
        days = int(cert.get("days_left", 0))
        failed = days < 0 or any(f.startswith(f"certificate {n} (") for f in failures)
        css = "fail" if failed else "warn" if days < 30 else ""
        key = f"{cert.get('key')} {cert.get('key_bits')}"
        rows.append((str(n), *(printable(str(v)) for v in (cert.get("subject"), cert.get("issuer"), key,
                     cert.get("signature"), cert.get("not_after"))), str(days), css))
    return rows


def offer_view(index: int, details: dict[str, Any]) -> OfferView:
    failures = [str(f) for f in details.get("failures") or []]
    warnings = [str(w) for w in details.get("warnings") or []]
    offered = details.get("versions") or {}
    groups = details.get("groups") or {}
    versions = [v for v in VERSIONS if v in offered or v in groups]
    ids = {name: str(facts.get("id", "")) for name, facts in (details.get("suites") or {}).items()}
    kinds = {g: "finite-field" if g.startswith("ffdhe") else "curve" for by in groups.values() for g in by}
    return OfferView(index, versions, _rows(offered, versions, "suite", failures, ids),
                     _rows(groups, versions, "group", failures, kinds), _facts(details, failures, warnings),
                     _chain(details.get("chain") or [], failures), [printable(f) for f in failures],
                     [printable(w) for w in warnings])
