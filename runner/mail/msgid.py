"""Whether a body has a Message-ID (RFC 5322 §3.6.4), and adding the case's own to one that lacks it.

The id itself is made with the case's scope (runner.plan.scope: `{{ message_id }}`).
"""

from __future__ import annotations

import re

__all__ = ["add_header", "header_of"]

_HEADER = re.compile(rb"^message-id[ \t]*:", re.IGNORECASE | re.MULTILINE)


def _header_section(body: bytes) -> bytes:
    """The header section: up to the first empty line (RFC 5322 §2.1), or everything."""
    m = re.search(rb"\r?\n\r?\n", body)
    return body[: m.start() + 1] if m else body


def header_of(body: bytes) -> bool:
    """Whether the body's header section has a Message-ID field."""
    return bool(_HEADER.search(_header_section(body)))


def add_header(body: bytes, message_id: str) -> bytes:
    """`Message-ID: <id>` as the body's first line. A body whose first line is not a header field
    (no "Name:" before the first empty line) gets the empty line too, so its text stays the body."""
    first = body.split(b"\n", 1)[0]
    line = f"Message-ID: <{message_id}>\r\n".encode("ascii")
    if re.match(rb"^[!-9;-~]+:", first):
        return line + body
    return line + b"\r\n" + body
