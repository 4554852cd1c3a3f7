"""Text the reporters write, formatted without a template engine: times, durations, latencies,
protocol lines, TLS facts, and what a reader may see of server and plan text (`printable`)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from runner.text import MARKUP
from runner.text import printable as _printable

if TYPE_CHECKING:
    from runner.results import CaseResult

__all__ = [
    "format_latency",
    "format_seconds",
    "format_utc",
    "parse_utc",
    "printable",
    "split_lines",
    "tls_rows",
    "why_failed",
]

_LINE = re.compile(rb"[^\n]*\n|[^\n]+")


def printable(text: str | None) -> str:
    """Text with invisible and XML-illegal characters written as escapes (\\x00, \\r); tab and LF kept."""
    return _printable(text, MARKUP)


def split_lines(data: bytes) -> list[bytes]:
    """Bytes cut after each LF, line ends kept, so a transcript shows one protocol line per row."""
    return _LINE.findall(data) or [b""]


def why_failed(case: CaseResult) -> str:
    """One line saying why a session failed: its own reason, else its failed step's."""
    step = case.failed_step
    return case.reason or (step.reason if step else None) or case.status


def parse_utc(iso: str) -> datetime:
    """Read a timestamp written by results.utc_iso back."""
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def format_utc(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.3f} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


def format_latency(seconds: float | None) -> str:
    """A latency in the unit people read it in: `0.42 ms`, `12.3 ms`, `480 ms`, `2.31 s`."""
    if seconds is None:
        return "—"
    ms = seconds * 1000
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 100:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{seconds:.2f} s"


_TLS_LABELS = {
    "version": "Protocol",
    "cipher": "Cipher",
    "verified": "Certificate checked",
    "subject": "Subject",
    "issuer": "Issuer",
    "san": "Names (SAN)",
    "not_before": "Valid from",
    "not_after": "Valid until",
    "chain": "Chain sent",
}


def _cert_date(value: str) -> str:
    """A certificate date as runner.net.tls writes it (2025-06-01T12:00:00Z), as the report writes times."""
    try:
        return format_utc(datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc))
    except ValueError:
        return value


def _days_left(days: Any) -> str:
    """How long the certificate had left when the case ran (the report may be read much later)."""
    if not isinstance(days, int) or isinstance(days, bool):
        return ""
    if days < 0:
        return f" · expired {-days} day{'s' if days != -1 else ''} before the case ran"
    return f" · {days} day{'s' if days != 1 else ''} left when the case ran"


def _chain_element(position: int, element: dict[str, Any]) -> str:
    """One certificate of the chain sent: "2. CN=Example CA, until 2030-01-01 00:00:00 UTC (1500 days left)"."""
    until = element.get("not_after")
    days = element.get("days_left")
    left = f" ({days} days left)" if isinstance(days, int) and not isinstance(days, bool) else ""
    return f"{position}. {element.get('subject') or '?'}" + (f", until {_cert_date(until)}{left}" if until else "")


def _tls_value(key: str, value: Any, facts: dict[str, Any]) -> str:
    if value is None:
        return "—"
    if key == "verified":
        return "yes: the chain and the host name were verified" if value else "no (verify: false)"
    if key in ("not_before", "not_after") and isinstance(value, str):
        return _cert_date(value) + (_days_left(facts.get("days_left")) if key == "not_after" else "")
    if key == "chain" and isinstance(value, list):
        return " · ".join(_chain_element(i, e) for i, e in enumerate(value, 1) if isinstance(e, dict)) or "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def tls_rows(facts: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A case's TLS facts (docs/json-format.md, `tls`) as (label, value) rows a reader can take in:
    "Valid until 2025-06-01 12:00:00 UTC · 120 days left when the case ran", names comma-separated."""
    facts = facts or {}
    rows = []
    for key, value in facts.items():
        if key == "days_left" and "not_after" in facts:  # said beside "Valid until"
            continue
        label = _TLS_LABELS.get(key) or str(key).replace("_", " ").capitalize()
        rows.append((printable(label), printable(_tls_value(str(key), value, facts))))
    return rows
