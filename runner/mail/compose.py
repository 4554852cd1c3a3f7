"""A message made from parts for a `message:` step, with the standard library's `email` package.

RFC 5322 header fields (From, To, Subject, the plan's own, Date and Message-ID unless given), a text body
and an HTML alternative (RFC 2046 §5.1.4), attachments in base64 (RFC 2045 §6.8) named by
Content-Disposition (RFC 2183, RFC 2231 for names that are not ASCII); a DKIM signature over the result
(RFC 6376, dkimpy). Header text that is not ASCII is written as encoded words (RFC 2047), or as UTF-8
(RFC 6532) when the transaction is SMTPUTF8 (RFC 6531). Bytes in, bytes out: the step reads the files.
"""

from __future__ import annotations

import email.policy
import email.utils
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

__all__ = ["MAX_ATTACHMENT_BYTES", "MAX_SIGNED_BYTES", "Attachment", "MessageError", "Parts", "build",
           "content_type", "describe", "header_size", "sign"]

# No RFC bounds a message's size (RFC 5322 §2.1.1 bounds its lines); servers announce theirs with SIZE
# (RFC 1870): Postfix's default is 10240000 bytes, Exchange Online's 150 MB. smtprun builds a message whole in
# memory, so it takes at most this many bytes of attachment files for one (base64 sends 4/3 of them).
MAX_ATTACHMENT_BYTES = 32 * 1024 * 1024
# A `data_file:` body signed with DKIM is read whole (the signature's body hash comes first, RFC 6376 §3.7) and
# held a few times over while dkimpy canonicalizes it; servers must take 64K octets (RFC 5321 §4.5.3.1.7) and
# most stop far below this (Postfix's default message_size_limit is 10240000 bytes).
MAX_SIGNED_BYTES = 32 * 1024 * 1024
_ADDRESS_FIELDS = frozenset({"from", "to", "cc", "bcc", "reply-to", "sender", "resent-from", "resent-to",
                             "resent-cc", "resent-bcc", "resent-sender"})


class MessageError(ValueError):
    """The parts do not make a message that can be sent: said as the reason the step failed."""


@dataclass(frozen=True)
class Attachment:
    name: str  # the file name the recipient sees
    content_type: str  # type/subtype
    data: bytes


@dataclass(frozen=True)
class Parts:
    """What a `message:` step gives, rendered. An empty string is a key not given."""

    sender: str = ""
    to: tuple[str, ...] = ()
    subject: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    text: str | None = None
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()


def content_type(name: str, given: str = "") -> str:
    """The attachment's type: as given, else guessed from the name (mimetypes), else application/octet-stream."""
    return given or mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def build(parts: Parts, message_id: str, utf8: bool, now: datetime | None = None) -> EmailMessage:
    """The message. `utf8`: the transaction is SMTPUTF8, so header fields and bodies may be sent as UTF-8."""
    needs_utf8 = any(not _ascii(value) for _, value in _fields(parts))
    msg = EmailMessage(policy=email.policy.SMTPUTF8 if utf8 and needs_utf8 else email.policy.SMTP)
    for name, value in _fields(parts):
        _set(msg, name, value, utf8)
    given = {name.lower() for name in msg}
    if "date" not in given:
        msg["Date"] = email.utils.format_datetime(now or email.utils.localtime())
    if "message-id" not in given:  # expect_delivery and expect_dsn find the message by it
        msg["Message-ID"] = f"<{message_id}>"
    _body(msg, parts, utf8)
    return msg


def _fields(parts: Parts) -> Iterator[tuple[str, str]]:
    if parts.sender:
        yield "From", parts.sender
    if parts.to:
        yield "To", ", ".join(parts.to)
    if parts.subject:
        yield "Subject", parts.subject
    yield from parts.headers


def _ascii(text: str) -> bool:
    return text.isascii()


def _set(msg: EmailMessage, name: str, value: str, utf8: bool) -> None:
    try:
        msg[name] = value
        field: Any = msg[name]
    except (ValueError, TypeError, IndexError) as exc:  # a line break in the value, an unparsable field
        if name.lower() in _ADDRESS_FIELDS and not any(c in value for c in "\r\n"):
            raise MessageError(f"{name}: {value!r} is not a list of addresses (RFC 5322 §3.4)") from None
        raise MessageError(f"{name}: {value!r}: {exc}") from None
    if name.lower() not in _ADDRESS_FIELDS:
        return
    addresses = getattr(field, "addresses", ())
    if not addresses or any(not a.username or not a.domain for a in addresses):
        raise MessageError(f"{name}: {value!r} is not a list of addresses (RFC 5322 §3.4)")
    if not utf8:
        wide = next((a.addr_spec for a in addresses if not _ascii(a.addr_spec)), None)
        if wide is not None:
            raise MessageError(f"{name}: the address {wide} is not ASCII: it can only be sent in a transaction "
                               "whose MAIL FROM carried SMTPUTF8 and was accepted (RFC 6531 §3.2); RFC 2047 "
                               "encoded words may not stand in an address (RFC 2047 §5)")


def _cte(text: str, utf8: bool) -> str | None:
    """7-bit text as it is; other text 8-bit only in an SMTPUTF8 transaction (its server takes 8BITMIME,
    RFC 6531 §3.1), quoted-printable otherwise (RFC 2045 §6.7). None: the email package chooses (long lines)."""
    if _ascii(text) or utf8:
        return None
    return "quoted-printable"


def _body(msg: EmailMessage, parts: Parts, utf8: bool) -> None:
    if parts.text is not None or parts.html is None:
        text = parts.text or ""
        msg.set_content(text, cte=_cte(text, utf8))
        if parts.html is not None:
            msg.add_alternative(parts.html, subtype="html", cte=_cte(parts.html, utf8))
    else:
        msg.set_content(parts.html, subtype="html", cte=_cte(parts.html, utf8))
    for item in parts.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        msg.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.name, cte="base64")


def header_size(raw: bytes) -> int:
    """Bytes of the header section with the empty line after it (RFC 5322 §2.1)."""
    end = raw.find(b"\r\n\r\n")
    return len(raw) if end < 0 else end + 4


def describe(msg: EmailMessage) -> list[str]:
    """The MIME structure as lines for the transcript: each part's type, name and size, never its content."""
    lines = []
    for depth, part in _walk(msg, 0):
        kind = part.get_content_type()
        if part.is_multipart():
            lines.append(f"{'  ' * depth}{kind} ({len(part.get_payload())} parts)")
            continue
        data = part.get_payload(decode=True) or b""
        cte = str(part.get("Content-Transfer-Encoding", "7bit")).lower()
        name = part.get_filename()
        shown = f' "{name}"' if name else ""
        charset = part.get_content_charset()
        lines.append(f"{'  ' * depth}{kind}{shown}{f'; charset={charset}' if charset else ''}: "
                     f"{len(data)} bytes{f', sent as {cte}' if cte not in ('7bit', '8bit') else ''}")
    return lines


def _walk(part: EmailMessage, depth: int) -> Iterator[tuple[int, EmailMessage]]:
    yield depth, part
    if part.is_multipart():
        for sub in part.iter_parts():
            yield from _walk(sub, depth + 1)  # type: ignore[arg-type]


def sign(raw: bytes, domain: str, selector: str, key: bytes) -> bytes:
    """The message with a DKIM-Signature field on top (RFC 6376; rsa-sha256, relaxed/relaxed, dkimpy's
    default set of signed fields with From signed once more than it occurs, so none can be added)."""
    import dkim

    for what, value in (("domain", domain), ("selector", selector)):
        if not value or not _ascii(value) or any(c.isspace() or c == ";" for c in value):
            raise MessageError(f"dkim {what}: {value!r} is not a domain name in ASCII (RFC 6376 §3.5: d=, s=)")
    try:
        field = dkim.sign(raw, selector.encode(), domain.encode(), key, canonicalize=(b"relaxed", b"relaxed"))
    except dkim.MessageFormatError as exc:  # a `data:` body that is not a message
        raise MessageError(f"dkim: the body is not a message that can be signed ({exc}): it needs a header "
                           "section, an empty line, then the body (RFC 5322 §2.1)") from None
    except dkim.ParameterError as exc:
        if b"\nfrom:" not in b"\n" + raw.lower():
            raise MessageError("dkim: the message has no From field, which a signature must cover "
                               "(RFC 6376 §5.4)") from None
        raise MessageError(f"dkim: cannot sign: {exc}") from None
    except dkim.DKIMException as exc:
        raise MessageError(f"dkim: cannot sign with the key given: {exc}") from None
    except ValueError as exc:  # the key is not PEM, or not an RSA key
        raise MessageError(f"dkim: the key is not a PEM RSA private key ({exc})") from None
    return field + raw
