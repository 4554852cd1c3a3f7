"""The reporters' Jinja2 side: the sandboxed template environment and JSON safe to embed in a page.

Plain text formatting lives in runner.report.format, which needs no template engine.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jinja2 import PackageLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from runner.report.format import printable

__all__ = ["embed_json", "environment"]


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
