"""Judging a reply against a step's expectation, and describing both in words."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from runner import limits
from runner.errors import SmtprunError
from runner.smtp.protocol import Reply

__all__ = ["CLOSED", "check", "describe"]

CLOSED = "closed"


def _code_matches(spec: int | str, code: int) -> bool:
    if isinstance(spec, int):
        return spec == code
    pattern = spec.lower()
    return len(pattern) == 3 and all(p in ("x", c) for p, c in zip(pattern, str(code), strict=True))


def _codes(spec: Any) -> list[int | str]:
    if spec is None:
        return []
    return list(spec) if isinstance(spec, list) else [spec]


def _enhanced_matches(pattern: str, actual: str | None) -> bool:
    if actual is None:
        return False
    return all(p == "x" or int(p) == int(a) for p, a in zip(pattern.split("."), actual.split("."), strict=True))


def _transient(reply: Reply) -> str:
    """A 4xx is no refusal (RFC 5321 §4.2.1: "the action may be requested again"): greylisting, a rate or
    connection limit, a full queue. Said so, so that it is not read as the server's final answer."""
    if reply.code // 100 != 4:
        return ""
    return " (a temporary failure: the server asks to try again later; `retry:` tries the case again)"


def _shown(pattern: str, render: Callable[[str], str] | None) -> str:
    """A `text:` pattern as the step used it: rendered when it is a template (the raw text if it cannot be)."""
    if render is None or ("{{" not in pattern and "{%" not in pattern):
        return pattern
    try:
        return render(pattern)
    except SmtprunError:  # the step fails saying why; the expectation is shown as written
        return pattern


def describe(spec: Any, render: Callable[[str], str] | None = None) -> str:
    """The expectation as a person would say it: '250', '2xx or 3xx', 'closed', '250 matching /ok/';
    with `render`, a templated `text:` as the case rendered it."""
    if spec == CLOSED:
        return "the server closes the connection"
    if not isinstance(spec, dict):
        return " or ".join(str(c) for c in _codes(spec))
    parts = [" or ".join(str(c) for c in _codes(spec.get("code")))] if "code" in spec else ["any reply"]
    if "enhanced" in spec:
        parts.append(f"enhanced {spec['enhanced']}")
    if "text" in spec:
        parts.append(f"text matching /{_shown(spec['text'], render)}/")
    if spec.get("keywords"):
        parts.append("keywords " + ", ".join(spec["keywords"]))
    if spec.get("absent"):
        parts.append("without " + ", ".join(spec["absent"]))
    return ", ".join(parts)


def check(spec: Any, reply: Reply, render: Callable[[str], str] | None = None) -> str | None:
    """Why `reply` does not meet `spec`, or None when it does; `render` turns a templated `text:` into its regex."""
    if spec is None:
        return None
    if spec == CLOSED:
        return f"expected the server to close the connection, got {reply.summary()}"
    if isinstance(spec, int) and spec == reply.code:  # `expect: 250` met: most replies of a load run
        return None
    codes = _codes(spec.get("code") if isinstance(spec, dict) else spec)
    if codes and not any(_code_matches(c, reply.code) for c in codes):
        return f"expected {' or '.join(map(str, codes))}, got {reply.summary()}{_transient(reply)}"
    if not isinstance(spec, dict):
        return None
    return _enhanced_problem(spec, reply) or _text_problem(spec, reply, render) or _keyword_problem(spec, reply)


def _enhanced_problem(spec: dict[str, Any], reply: Reply) -> str | None:
    if "enhanced" not in spec or _enhanced_matches(spec["enhanced"], reply.enhanced):
        return None
    return f"expected enhanced code {spec['enhanced']}, got {reply.enhanced or 'none'} in {reply.summary()}"


def _text_problem(spec: dict[str, Any], reply: Reply, render: Callable[[str], str] | None) -> str | None:
    if "text" not in spec:
        return None
    pattern = render(spec["text"]) if render is not None else spec["text"]
    try:
        found = limits.search(pattern, reply.text)
    except re.error as exc:
        return f"bad regex /{pattern}/: {exc}"
    except limits.RegexTimeout as exc:
        return str(exc)
    return None if found else f"expected text matching /{pattern}/, got {reply.summary()}"


def _keyword_problem(spec: dict[str, Any], reply: Reply) -> str | None:
    """EHLO keywords the step wants offered (`keywords:`) or not offered (`absent:`)."""
    keywords = reply.keywords()
    missing = [k for k in spec.get("keywords", []) if k.upper() not in keywords]
    if missing:
        return f"EHLO keywords missing: {', '.join(missing)} (offered: {', '.join(keywords) or 'none'})"
    present = [k for k in spec.get("absent", []) if k.upper() in keywords]
    if present:
        return f"EHLO keywords offered but expected absent: {', '.join(present)}"
    return None
