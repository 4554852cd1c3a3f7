"""Delivery status notifications (RFC 3464) read with the standard `email` package.

    multipart/report; report-type=delivery-status          RFC 6522
      1. text/plain                                         for people
      2. message/delivery-status                            per-message fields, then per-recipient blocks
      3. message/rfc822 or text/rfc822-headers              the original (RET=FULL) or its header (RET=HDRS)

A report that breaks this shape is a DsnError naming what is wrong, never a traceback.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from runner.errors import SmtprunError

__all__ = ["ACTIONS", "Dsn", "DsnError", "Recipient", "about", "parse_dsn", "status_matches"]

ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")  # RFC 3464 §2.3.3
_STATUS = re.compile(r"^[245]\.[0-9]{1,3}\.[0-9]{1,3}$")  # RFC 3463 §2: class.subject.detail


class DsnError(SmtprunError):
    """The message is not a well-formed RFC 3464 report."""


@dataclass
class Recipient:
    final: str  # Final-Recipient, its address part
    original: str | None
    action: str
    status: str
    diagnostic: str | None
    remote_mta: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"final_recipient": self.final, "original_recipient": self.original, "action": self.action,
                "status": self.status, "diagnostic": self.diagnostic, "remote_mta": self.remote_mta}


@dataclass
class Dsn:
    reporting_mta: str | None
    envelope_id: str | None  # Original-Envelope-Id: the ENVID of MAIL FROM (RFC 3461 §4.4)
    recipients: list[Recipient] = field(default_factory=list)
    returned_ids: list[str] = field(default_factory=list)  # Message-IDs in the returned message or header
    subject: str = ""
    nonconformant: str | None = None  # how the report breaks RFC 3464's shape, where it is still readable

    def to_dict(self) -> dict[str, Any]:
        return {"reporting_mta": self.reporting_mta, "original_envelope_id": self.envelope_id,
                "subject": self.subject, "returned_message_ids": self.returned_ids,
                "recipients": [r.to_dict() for r in self.recipients], "nonconformant": self.nonconformant}


def _address(value: str | None) -> str | None:
    """`rfc822;alice@example.com` -> alice@example.com (RFC 3464 §2.3.2: address-type ; address)."""
    if value is None:
        return None
    kind, semi, addr = value.partition(";")
    return " ".join((addr if semi else kind).split()).strip("<>")


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list) and all(isinstance(b, Message) for b in payload):
        return payload
    text = part.get_payload(decode=True) or b""  # some MTAs send it base64-encoded: read it all the same
    chunks = re.split(rb"\r?\n[ \t]*\r?\n", text.strip())
    return [email.message_from_bytes(c + b"\n", policy=email.policy.compat32) for c in chunks if c.strip()]


def _status_part(message: Message) -> tuple[Message, str | None]:
    """The message/delivery-status part, and how the report around it breaks RFC 3464 §2 (None: it does not).
    A report sent as another multipart type (OpenSMTPD 7.4's "delivered" notice is multipart/mixed) is read
    all the same, wherever its delivery-status part is, and said to be non-conformant."""
    ctype = message.get_content_type()
    if ctype == "multipart/report":
        if (message.get_param("report-type") or "").lower() != "delivery-status":
            raise DsnError(f"multipart/report with report-type={message.get_param('report-type')!r}, "
                           "not delivery-status (RFC 3464 §2)")
        if not isinstance(message.get_payload(), list):
            raise DsnError("multipart/report without MIME parts (no boundary?)")
        status = next((p for p in message.get_payload() if p.get_content_type() == "message/delivery-status"), None)
        if status is None:
            raise DsnError("the report has no message/delivery-status part (RFC 3464 §2)")
        return status, None
    status = next((p for p in message.walk() if p.get_content_type() == "message/delivery-status"), None)
    if status is None or not message.is_multipart():
        raise DsnError(f"not a delivery status notification: Content-Type is {ctype}, not multipart/report")
    return status, (f"Content-Type is {ctype}, not multipart/report; report-type=delivery-status "
                    "(RFC 3464 §2, RFC 6522 §3); its message/delivery-status part was read all the same")


def parse_dsn(raw: bytes) -> Dsn:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    status, nonconformant = _status_part(message)
    parts = list(message.walk())[1:]
    blocks = _blocks(status)
    if len(blocks) < 2:
        raise DsnError("message/delivery-status has no per-recipient block (RFC 3464 §2.3)")
    head = blocks[0]
    dsn = Dsn(head.get("Reporting-MTA"), (head.get("Original-Envelope-Id") or "").strip() or None,
              subject=" ".join(str(message.get("Subject", "")).split()), nonconformant=nonconformant)
    for n, block in enumerate(blocks[1:], start=1):
        dsn.recipients.append(_recipient(block, n))
    for part in parts:
        dsn.returned_ids.extend(_returned_ids(part))
    return dsn


def _recipient(block: Message, n: int) -> Recipient:
    missing = [f for f in ("Final-Recipient", "Action", "Status") if block.get(f) is None]
    if missing:
        raise DsnError(f"per-recipient block {n} lacks {', '.join(missing)} (required by RFC 3464 §2.3)")
    action = block["Action"].strip().lower().split()[0] if block["Action"].strip() else ""
    if action not in ACTIONS:
        raise DsnError(f"per-recipient block {n}: Action {block['Action']!r} is not one of {', '.join(ACTIONS)}")
    status = block["Status"].strip().split()[0] if block["Status"].strip() else ""
    if not _STATUS.match(status):
        raise DsnError(f"per-recipient block {n}: Status {block['Status']!r} is not an RFC 3463 code (like 5.1.1)")
    diagnostic = block.get("Diagnostic-Code")
    return Recipient(_address(block["Final-Recipient"]) or "", _address(block.get("Original-Recipient")),
                     action, status, " ".join(diagnostic.split()) if diagnostic else None,
                     _address(block.get("Remote-MTA")))


def _returned_ids(part: Message) -> list[str]:
    ctype = part.get_content_type()
    if ctype == "message/rfc822":
        inner = part.get_payload()
        msgs = inner if isinstance(inner, list) else []
        return [str(m.get("Message-ID", "")).strip().strip("<>") for m in msgs if m.get("Message-ID")]
    if ctype == "text/rfc822-headers":
        text = part.get_payload(decode=True) or b""
        header = email.message_from_bytes(text, policy=email.policy.compat32)
        return [str(v).strip().strip("<>") for v in header.get_all("Message-ID", [])]
    return []


def about(dsn: Dsn, message_id: str) -> bool:
    """Whether the report is about that message: its ENVID, or its Message-ID in what came back."""
    return dsn.envelope_id == message_id or message_id in dsn.returned_ids


def status_matches(want: str, got: str) -> bool:
    """`5.1.1` against `5.1.1`; `5.x.x` or `5.1.x` match any code of that class or subject."""
    wparts, gparts = want.lower().split("."), got.split(".")
    if len(wparts) != 3 or len(gparts) != 3:
        return False
    return all(w == "x" or w == g for w, g in zip(wparts, gparts, strict=True))
