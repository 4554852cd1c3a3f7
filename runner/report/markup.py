"""The reporters' Jinja2 side: the sandboxed template environment (its templates compiled once and kept
in the cache folder), JSON safe to embed in a page, text that wraps at spaces, and the page's one script
with the hash its Content-Security-Policy names.

Plain text formatting lives in runner.report.format, which needs no template engine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import marshal
import re
import sys
import types
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import PackageLoader, StrictUndefined
from jinja2.bccache import Bucket, BytecodeCache
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from runner import __version__
from runner.cache import PrivateFolder
from runner.environment import cache_folder
from runner.report.format import printable

__all__ = ["LONG_TOKEN", "PIECE", "breakable", "embed_json", "environment", "page_script"]

# A run of characters without a space up to this long is never cut (ENHANCEDSTATUSCODES, an address);
# a longer one (a base64 blob, a URL) may wrap after its punctuation or every PIECE characters, so it
# asks no more width of its column than a short one.
LONG_TOKEN = 32
PIECE = 16
_LONG = re.compile(rf"\S{{{LONG_TOKEN + 1},}}")
_AFTER_PUNCTUATION = re.compile(r"[^/.@,:;=&?]*[/.@,:;=&?]?")
_WBR = Markup("<wbr>")


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


def _pieces(token: str) -> list[str]:
    parts = [p for p in _AFTER_PUNCTUATION.findall(token) if p]
    return [p[i:i + PIECE] for p in parts for i in range(0, len(p), PIECE)]


def breakable(text: str | None) -> Markup:
    """Text escaped for a table cell that wraps at spaces, never inside a short token.

    A table sizes a column by the longest thing it cannot break. With CSS `overflow-wrap: break-word`
    that is the longest token, so a short one (`250-ENHANCEDSTATUSCODES`) keeps its column wide enough
    not to be cut; a token longer than LONG_TOKEN gets <wbr> break chances (after `/ . @ , : ; = & ?`,
    and every PIECE characters), so it alone cannot push the table wider than the page.
    """
    if not text:
        return Markup("")
    out, last = [], 0
    for match in _LONG.finditer(text):
        out.append(escape(text[last:match.start()]))
        out.append(_WBR.join(escape(p) for p in _pieces(match.group())))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


@lru_cache(maxsize=1)
def page_script() -> tuple[Markup, str]:
    """The report's own script (expand all / collapse all) and its CSP source, `'sha256-...'`.

    The page's Content-Security-Policy allows this script by its hash and no other: server text is
    escaped, and even text that were not could not run.
    """
    source = files("runner.report.templates").joinpath("expand.js.j2").read_text("utf-8")  # embedded as is
    digest = base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii")
    return Markup(source), f"'sha256-{digest}'"


_OPTIONS = {"autoescape": True, "trim_blocks": True, "lstrip_blocks": True, "keep_trailing_newline": True}
MAX_COMPILED = 4 * 1024 * 1024  # bytes: report.html.j2, the largest template, compiles to under 100 kB


class CompiledTemplates(BytecodeCache):
    """Each template's compiled code in the cache folder (runner.cache: the user's own files only), used while
    the template's text, smtprun, Jinja2, Python and the environment's options are those it was compiled with."""

    def __init__(self, folder: Path | None) -> None:
        self.files = PrivateFolder(folder)

    @staticmethod
    def _name(bucket: Bucket) -> str:
        key = (__version__, jinja2.__version__, sys.implementation.cache_tag, sorted(_OPTIONS.items()), bucket.key)
        return hashlib.sha256(repr(key).encode()).hexdigest()

    @staticmethod
    def _header(bucket: Bucket) -> bytes:
        return f"smtprun compiled template {bucket.checksum}\n".encode()  # the checksum of the template's text

    def load_bytecode(self, bucket: Bucket) -> None:
        data = self.files.read(self._name(bucket), MAX_COMPILED)
        header = self._header(bucket)
        if data is None or not data.startswith(header):
            return
        digest, code = data[len(header):len(header) + 32], data[len(header) + 32:]
        if hashlib.sha256(code).digest() != digest:  # damaged: compiled again
            return
        try:
            loaded = marshal.loads(code)
        except (EOFError, ValueError, TypeError):
            return
        if isinstance(loaded, types.CodeType):
            bucket.code = loaded

    def dump_bytecode(self, bucket: Bucket) -> None:
        code = marshal.dumps(bucket.code)
        self.files.write(self._name(bucket), self._header(bucket) + hashlib.sha256(code).digest() + code)


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    """Templates can only read what they are given: sandboxed, autoescaped, strict about names."""
    folder = cache_folder()
    env = SandboxedEnvironment(
        loader=PackageLoader("runner.report", "templates"),
        undefined=StrictUndefined,
        bytecode_cache=CompiledTemplates(None if folder is None else folder / "templates"),
        **_OPTIONS,  # type: ignore[arg-type]
    )
    env.filters["printable"] = printable
    env.filters["breakable"] = breakable
    return env
