"""Text from a server or a plan made safe to show: the one place characters become visible escapes.

A server (or a plan) controls every character smtprun shows of it. Control characters could drive
a terminal, bidirectional controls could make a server's "ko 052" read as "250 ok", and XML 1.0
(§2.2 Char) cannot hold most C0 controls at all. `printable` writes such characters as escapes;
which ones depends on where the text goes (a `Charset`), and whether a backslash is doubled so
that an escape cannot be forged is the caller's choice.

Secrets are masked on the raw text, before anything is escaped: a secret holding `"`, `\\` or a
control character is found as it was given, not as it is shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CONTROLS", "MARKUP", "UNPRINTABLE", "Charset", "excerpt", "printable"]

# Bidirectional controls (Unicode UAX #9): LRM, RLM, ALM, the embeddings and overrides, the isolates
_BIDI = "\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069"
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}


@dataclass(frozen=True)
class Charset:
    """Which characters are written as escapes.

    `chars` is the body of a regex character class; None means every character `str.isprintable()`
    refuses. With `python_surrogates`, a lone surrogate is written as Python writes it (\\udc80);
    otherwise one that stands for an undecodable byte (surrogateescape) is written as that byte (\\x80).
    """

    name: str
    chars: str | None
    python_surrogates: bool = False
    _patterns: tuple[re.Pattern[str], re.Pattern[str]] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        patterns = None if self.chars is None else (re.compile(f"[{self.chars}]"), re.compile(f"[{self.chars}\\\\]"))
        object.__setattr__(self, "_patterns", patterns)


# For a terminal and for transcripts: C0 (tab and LF too), DEL, C1, bidi controls, lone surrogates
CONTROLS = Charset("controls", f"\x00-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}")
# For HTML and XML text: the same less tab and LF, plus U+FFFE and U+FFFF, which XML 1.0 forbids
MARKUP = Charset("markup", f"\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff{_BIDI}")
# For YAML comments: every character Python calls unprintable, U+2028 and U+2029 among them, which
# YAML takes for line breaks (YAML 1.1 §5.4); escapes as Python's unicode_escape writes them
UNPRINTABLE = Charset("unprintable", None, python_surrogates=True)


def _escape(ch: str, python_surrogates: bool) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    o = ord(ch)
    if 0xDC80 <= o <= 0xDCFF and not python_surrogates:  # an undecodable byte, kept by surrogateescape
        return f"\\x{o - 0xDC00:02x}"
    # \xNN is a byte: ASCII, or (from 80) one that is not UTF-8; a C1 character (UTF-8 C2 80-C2 9F) is
    # \u0080-\u009f, so every escape stands for one thing. Python's own style writes \x80-\xff for those.
    if o <= 0x7F or (o <= 0xFF and python_surrogates):
        return f"\\x{o:02x}"
    return f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"


def printable(
    data: str | bytes | None,
    charset: Charset = MARKUP,
    *,
    backslash: bool = False,
    redact: Callable[[str], str] | None = None,
) -> str:
    """`data` with the characters of `charset` written as escapes (\\x1b, \\r, \\u202e).

    Bytes are read as UTF-8, an undecodable byte kept to be shown as \\xNN. `redact` is applied to
    the text before anything is escaped. With `backslash`, a backslash is doubled, so that every
    backslash shown starts an escape (text a program reads back); without, it is shown as it is.
    """
    if not data:
        return ""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    if redact is not None:
        text = redact(text)
    surrogates = charset.python_surrogates
    if charset._patterns is None:
        return "".join(
            ch if ch.isprintable() and not (backslash and ch == "\\") else _escape(ch, surrogates) for ch in text
        )
    return charset._patterns[backslash].sub(lambda m: _escape(m[0], surrogates), text)


EXCERPT = 60  # characters of a server's line quoted in a one-line message


def excerpt(text: str, *, redact: Callable[[str], str] | None = None, limit: int = EXCERPT) -> str:
    """A server's text quoted in a message: secrets masked on the raw text, then cut to `limit`
    characters, then escaped (backslashes doubled, so an escape cannot be forged) and quoted."""
    if redact is not None:
        text = redact(text)
    cut = text if len(text) <= limit else text[:limit] + "..."
    return "'" + printable(cut, CONTROLS, backslash=True) + "'"
