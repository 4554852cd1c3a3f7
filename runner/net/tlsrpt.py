"""SMTP TLS reporting (RFC 8460): the `_smtp._tls.<domain>` TXT record found and parsed, its `rua=` URIs checked
(§3: mailto: or https:, one or more, comma-separated)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from runner.net.resolver import DnsError, Lookups, ResolverConfig, shown

__all__ = ["TlsRptCheck", "check_tlsrpt", "parse_record"]

_VERSION = re.compile(r"^v=TLSRPTv1[ \t]*(?:;|$)")  # RFC 8460 §3: a record must begin with v=TLSRPTv1
_MAILTO = re.compile(r"^mailto:[^@\s,;]+@[A-Za-z0-9.-]+\.?$", re.I)


@dataclass
class TlsRptCheck:
    """The JSON facts of an `expect_dns: {tls_rpt: ...}` step."""

    domain: str
    record: str | None = None
    rua: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def facts(self) -> dict[str, Any]:
        return {"domain": self.domain, "record": self.record, "rua": self.rua, "errors": self.errors,
                "warnings": self.warnings}


def parse_record(text: str) -> tuple[list[str], list[str]]:
    """The rua= URIs of a v=TLSRPTv1 record and its errors (RFC 8460 §3's grammar)."""
    errors: list[str] = []
    fields: dict[str, str] = {}
    for part in text.split(";")[1:]:
        if not part.strip():
            continue
        name, equals, value = (piece.strip() for piece in part.partition("="))
        if not equals or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", name):
            errors.append(f"{part.strip()!r} is not a field=value pair (RFC 8460 §3)")
        elif name in fields:
            errors.append(f"the field {name}= appears twice (RFC 8460 §3)")
        else:
            fields[name] = value
    if "rua" not in fields:
        errors.append("no rua= field: nowhere to send reports (RFC 8460 §3)")
        return [], errors
    uris = [uri.strip() for uri in fields["rua"].split(",")]
    for uri in uris:
        problem = _uri_problem(uri)
        if problem:
            errors.append(f"rua: {uri!r} {problem} (RFC 8460 §3)")
    return uris, errors


def _uri_problem(uri: str) -> str | None:
    scheme = uri.partition(":")[0].lower()
    if scheme == "mailto":
        return None if _MAILTO.match(uri) else "is not a mailto: address"
    if scheme == "https":
        parts = urlsplit(uri)
        return None if parts.hostname else "is not an https: URL with a host"
    return "is neither a mailto: nor an https: URI"


async def check_tlsrpt(domain: str, config: ResolverConfig, lookups: Lookups) -> TlsRptCheck:
    """The domain's one TLS-RPT record (RFC 8460 §3), judged."""
    check = TlsRptCheck(shown(domain).lower())
    name = f"_smtp._tls.{check.domain}"
    try:
        texts = await lookups.query(name, "TXT", config)
    except DnsError as e:
        if not e.nxdomain:
            check.errors.append(f"TLS-RPT record not checked: {e}")
        return check
    records = [r for r in (t.decode("utf-8", "replace") for t in texts) if _VERSION.match(r)]
    if len(records) > 1:
        check.errors.append(f"{len(records)} v=TLSRPTv1 records at {name}; RFC 8460 §3 allows one, so senders "
                            "send no reports")
    if records:
        check.record = records[0]
        check.rua, errors = parse_record(records[0])
        check.errors += errors if len(records) == 1 else []
    return check
