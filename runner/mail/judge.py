"""What `expect_delivery:` and `expect_dsn:` check in what arrived, and the facts the reports show.

Each judge returns (problems, facts): problems are one-line reasons (empty when the step passes),
facts the JSON-shaped record of what was found, with no secret in it.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from runner import limits
from runner.mail import dsn as dsnparse
from runner.mail.auth import authentication_results, check_results, verify_dkim
from runner.mail.reader import MAX_BODY_BYTES, Found

__all__ = ["MAX_SHOWN_FIELDS", "attachments_of", "body_text", "delivery", "header_facts", "report"]

MAX_SHOWN_FIELDS = 100  # header fields of the delivered copy kept in the report
MAX_SHOWN_VALUE = 2000  # characters of one field's value kept
_TLS_RECEIVED = re.compile(r"\bwith\s+(?:E?SMTPS|ESMTPSA|LMTPS)\b|\busing\s+TLS|\(TLS|\btls\b|version=TLS", re.I)
_SMTP_RECEIVED = re.compile(r"\bwith\s+(?:E?SMTP|LMTP|UTF8SMTP)", re.I)


def header_facts(found: Found) -> list[list[str]]:
    from runner.mail.reader import header_fields

    fields = header_fields(found.header)[:MAX_SHOWN_FIELDS]
    return [[name, _cut(" ".join(value.split()))] for name, value in fields]


def _cut(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_VALUE else text[:MAX_SHOWN_VALUE] + f"… ({len(text)} characters)"


def body_text(found: Found) -> str:
    """The body as text: the decoded text/* parts of a MIME message, else the bytes as UTF-8."""
    try:
        message = email.message_from_bytes(found.raw, policy=email.policy.default)
        texts = [p.get_content() for p in message.walk() if p.get_content_maintype() == "text"]
        if texts and not found.truncated:
            return "\n".join(t for t in texts if isinstance(t, str))
    except (LookupError, ValueError, TypeError, AttributeError):  # an unknown charset, a broken part
        pass
    return found.body.decode("utf-8", "replace")


def _search(what: str, pattern: str, text: str) -> str | None:
    """None when /pattern/ is in text, else why not."""
    try:
        if limits.search(pattern, text):
            return None
    except re.error as exc:
        return f"{what}: bad regex /{pattern}/: {exc}"
    except limits.RegexTimeout as exc:
        return f"{what}: {exc}"
    shown = text if len(text) <= 200 else text[:200] + "…"
    return f"{what}: /{pattern}/ not found in {shown!r}"


def _headers(found: Found, want: Mapping[str, str]) -> list[str]:
    problems = []
    for name, pattern in want.items():
        values = found.fields(name)
        if not values:
            problems.append(f"the delivered copy has no {name} header")
            continue
        why = _search(f"header {name}", pattern, "\n".join(values))
        if why:
            problems.append(why)
    return problems


def _received_tls(found: Found) -> tuple[bool, list[str]]:
    hops = [v for v in found.fields("Received") if _SMTP_RECEIVED.search(v)]
    return bool(hops) and all(_TLS_RECEIVED.search(v) for v in hops), hops


def delivery(found: Found, spec: Mapping[str, Any], nameservers: Sequence[tuple[str, int]] = (),
             latency: float | None = None) -> tuple[list[str], dict[str, Any]]:
    """Judge a delivered copy against the step's `headers`, `body`, `received_tls`, `dkim`,
    `authentication_results`, `latency`."""
    problems = _headers(found, spec.get("headers") or {})
    facts: dict[str, Any] = {"folder": found.folder, "size": found.size, "truncated": found.truncated,
                             "headers": header_facts(found)}
    if "body" in spec:
        why = _search("body", spec["body"], body_text(found))
        problems += [why] if why else []
    tls_ok, hops = _received_tls(found)
    facts["received_tls"] = tls_ok
    if spec.get("received_tls") and not tls_ok:
        problems.append("the Received chain does not show TLS on every SMTP hop"
                        + (f" (last hop: {hops[0][:200]!r})" if hops else " (no SMTP hop in it)"))
    results = authentication_results(found.fields("Authentication-Results"))
    facts["authentication_results"] = [r.to_dict() for r in results]
    if spec.get("authentication_results"):
        wanted = dict(spec["authentication_results"])
        problems += check_results(found.fields("Authentication-Results"), wanted.pop("authserv_id"), wanted)
    if "dkim" in spec or found.fields("DKIM-Signature"):
        verdict = verify_dkim(found.raw, found.fields("DKIM-Signature"), nameservers, found.truncated)
        facts["dkim"] = verdict.to_dict()
        if "dkim" in spec and verdict.result != spec["dkim"]:
            why = "; ".join(f"d={s['d']} s={s['s']}: {s.get('why', s.get('result'))}" for s in verdict.signatures)
            theirs = [f"{r.authserv_id} says dkim={r.result}" for r in results if r.method == "dkim"]
            problems.append(f"DKIM is {verdict.result}, expected {spec['dkim']}" + (f" ({why})" if why else "")
                            + (f"; {', '.join(theirs)}" if theirs else ""))
    problems += _attachments(found, spec.get("attachments") or (), facts)
    if latency is not None:
        facts["latency"] = round(latency, 3)
    if "latency" in spec:
        if latency is None:
            problems.append("latency: no message was accepted (a 250 after the data) earlier in this case")
        elif latency > spec["latency"]:
            problems.append(f"latency: arrived {latency:.1f}s after the server accepted it, over {spec['latency']:g}s")
    return problems, facts


def attachments_of(raw: bytes) -> list[dict[str, Any]]:
    """The message's attachments (parts with a file name, or a Content-Disposition of attachment, RFC 2183):
    name, type, size and SHA-256 of the decoded bytes, in order."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts = [p for p in message.walk() if not p.is_multipart() and (p.get_filename() or p.is_attachment())]
        return [{"name": p.get_filename() or "", "type": p.get_content_type(),
                 "size": len(data := p.get_payload(decode=True) or b""), "sha256": hashlib.sha256(data).hexdigest()}
                for p in parts]
    except (LookupError, ValueError, TypeError, AttributeError):  # an unknown charset, a broken part
        return []


def _attachments(found: Found, wanted: Sequence[Mapping[str, str]], facts: dict[str, Any]) -> list[str]:
    """Each attachment the step names (by file name) is in the delivered copy, with the type and SHA-256 given."""
    if not wanted and b"\ncontent-disposition" not in found.raw.lower():  # nothing to show or check
        return []
    if found.truncated:
        return ["attachments: the delivered copy is larger than the part of it smtprun reads "
                f"({MAX_BODY_BYTES} bytes of body): its attachments cannot be checked"] if wanted else []
    arrived = facts["attachments"] = attachments_of(found.raw)
    problems = []
    for want in wanted:
        same = [a for a in arrived if a["name"] == want["name"]]
        if not same:
            there = ", ".join(f"{a['name'] or '(no name)'} ({a['type']}, {a['size']} bytes)" for a in arrived)
            problems.append(f"attachment {want['name']!r} is missing: the delivered copy has "
                            + (there or "no attachments"))
        elif not any(_matches(a, want) for a in same):
            problems.append(f"attachment {want['name']!r}: " + "; ".join(_differences(same[0], want)))
    return problems


def _matches(found: Mapping[str, Any], want: Mapping[str, str]) -> bool:
    return not _differences(found, want)


def _differences(found: Mapping[str, Any], want: Mapping[str, str]) -> list[str]:
    out = []
    if "type" in want and found["type"] != want["type"].lower():
        out.append(f"its type is {found['type']}, expected {want['type']}")
    if "sha256" in want and found["sha256"] != want["sha256"].lower():
        out.append(f"its SHA-256 is {found['sha256']}, expected {want['sha256'].lower()} "
                   f"({found['size']} bytes arrived)")
    return out


def report(found: Found, message_id: str, spec: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Judge a DSN against the step's `action`, `status`, `recipient`, `diagnostic`."""
    facts: dict[str, Any] = {"headers": header_facts(found)}
    try:
        dsn = dsnparse.parse_dsn(found.raw)
    except dsnparse.DsnError as exc:
        return [f"the report found is malformed: {exc}"], facts
    facts["dsn"] = dsn.to_dict()
    if not dsnparse.about(dsn, message_id):
        return [f"the report is not about <{message_id}>: neither its Original-Envelope-Id "
                f"({dsn.envelope_id or 'none'}) nor the returned Message-IDs match"], facts
    rcpts = dsn.recipients
    if "recipient" in spec:
        pattern = spec["recipient"]
        rcpts = [r for r in rcpts if any(_search("r", pattern, a) is None for a in (r.final, r.original) if a)]
        if not rcpts:
            names = ", ".join(r.final for r in dsn.recipients)
            return [f"recipient: /{spec['recipient']}/ matches no Final-/Original-Recipient ({names})"], facts
    problems = []
    for r in rcpts:
        why = []
        if "action" in spec and r.action != spec["action"]:
            why.append(f"Action is {r.action}, expected {spec['action']}")
        if "status" in spec and not dsnparse.status_matches(spec["status"], r.status):
            why.append(f"Status is {r.status}, expected {spec['status']}")
        if "diagnostic" in spec:
            found_why = _search("diagnostic", spec["diagnostic"], r.diagnostic or "")
            why += [found_why] if found_why else []
        if not why:
            return [], facts  # one recipient block that meets every condition
        problems.append(f"{r.final}: " + "; ".join(why))
    return problems, facts
