"""Text the reporters write, formatted without a template engine: times, durations, latencies,
protocol lines, and what a reader may see of server and plan text (`printable`)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING

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
