"""What the reporters share: the sandboxed template environment and text helpers."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import PackageLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

if TYPE_CHECKING:
    from runner.results import CaseResult

__all__ = [
    "embed_json",
    "environment",
    "format_latency",
    "format_seconds",
    "format_utc",
    "parse_utc",
    "printable",
    "split_lines",
    "why_failed",
]

# Characters a reader cannot see, or that XML 1.0 (§2.2 Char) forbids: C0 controls other than
# tab and LF, DEL and C1 controls, lone surrogates (undecodable bytes kept by surrogateescape),
# and the two noncharacters U+FFFE and U+FFFF.
_LINE = re.compile(rb"[^\n]*\n|[^\n]+")
# ... and the bidirectional controls, which would make a server's "ko 052" read as "250 ok"
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
                          "\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")


def _escape_char(m: re.Match[str]) -> str:
    o = ord(m[0])
    if o == 0x0D:
        return "\\r"
    if 0xDC80 <= o <= 0xDCFF:  # an undecodable byte, as show_bytes writes it
        return f"\\x{o - 0xDC00:02x}"
    return f"\\x{o:02x}" if o <= 0xFF else f"\\u{o:04x}"


def printable(text: str | None) -> str:
    """Text with invisible and XML-illegal characters written as escapes (\\x00, \\r); tab and LF kept."""
    if not text:
        return ""
    return _UNPRINTABLE.sub(_escape_char, text) if _UNPRINTABLE.search(text) else text


def split_lines(data: bytes) -> list[bytes]:
    """Bytes cut after each LF, line ends kept, so a transcript shows one protocol line per row."""
    return _LINE.findall(data) or [b""]


def why_failed(case: CaseResult) -> str:
    """One line saying why a session failed: its own reason, else its failed step's."""
    step = case.failed_step
    return case.reason or (step.reason if step else None) or case.status


def embed_json(data: Any) -> Markup:
    """JSON safe to put inside <script type="application/json">: no '<', '>' or '&' can close it."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate somewhere: let JSON escape it
        text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    text = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return Markup(text)


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


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    """Templates can only read what they are given: sandboxed, autoescaped, strict about names."""
    env = SandboxedEnvironment(
        loader=PackageLoader("runner.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["printable"] = printable
    return env
