"""DKIM (RFC 6376) verified on the delivered copy with dkimpy, and Authentication-Results (RFC 8601) read.

Keys are looked up with dnspython through the plan's name servers (`target: nameserver:`), or the
system's when it names none; the lookups run in the wait's thread, each bounded by DNS_TIMEOUT.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AuthResult", "DkimVerdict", "authentication_results", "check_results", "verify_dkim"]

DNS_TIMEOUT = 5.0
MAX_SIGNATURES = 8  # DKIM-Signature fields verified at most (each may cost a DNS lookup)


@dataclass
class DkimVerdict:
    result: str  # pass, fail, none; "unknown" when the copy was too large to verify
    signatures: list[dict[str, str]] = field(default_factory=list)  # d=, s=, result, why

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, "signatures": self.signatures}


def _txt_lookup(nameservers: Sequence[tuple[str, int]], timeout: float,
                failures: list[str] | None = None) -> Callable[..., bytes | None]:
    """A TXT lookup for dkimpy; why a key could not be had is added to `failures` (dkimpy only sees None)."""
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:  # each with its own port (dnspython >= 2.4)
        import dns.nameserver

        resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers]
    resolver.lifetime = timeout

    def lookup(name: bytes | str, timeout: float = timeout) -> bytes | None:
        qname = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        try:
            answer = resolver.resolve(qname.rstrip("."), "TXT", lifetime=min(timeout, DNS_TIMEOUT))
        except (dns.exception.DNSException, ValueError) as exc:
            if failures is not None:
                failures.append(_lookup_failure(qname.rstrip("."), exc, min(timeout, DNS_TIMEOUT)))
            return None
        return b"".join(b"".join(r.strings) for r in answer[:1])  # RFC 6376 §3.6.2.2: strings joined

    return lookup


def _lookup_failure(qname: str, exc: Exception, timeout: float) -> str:
    """The key's DNS failure as a user reads it (RFC 6376 §6.1.2: no key, or a temporary failure)."""
    import dns.resolver

    if isinstance(exc, dns.resolver.NXDOMAIN):
        return f"no key: NXDOMAIN for {qname} TXT"
    if isinstance(exc, dns.resolver.NoAnswer):
        return f"no key: {qname} has no TXT record"
    if isinstance(exc, dns.resolver.LifetimeTimeout):
        return f"no key: DNS timeout after {timeout:g}s for {qname} TXT"
    if isinstance(exc, dns.resolver.NoNameservers):
        return f"no key: no name server answered {qname} TXT (SERVFAIL or refused)"
    return f"no key: {qname} TXT: {exc}"


def _tag(signature: str, name: str) -> str:
    m = re.search(rf"(?:^|;)\s*{name}\s*=\s*([^;]*)", signature)
    return "".join(m.group(1).split()) if m else ""


def verify_dkim(raw: bytes, signatures: list[str], nameservers: Sequence[tuple[str, int]] = (),
                truncated: bool = False) -> DkimVerdict:
    """pass when a signature verifies, fail when there are signatures and none does, none without any."""
    if not signatures:
        return DkimVerdict("none")
    import dkim

    shown = [{"d": _tag(s, "d"), "s": _tag(s, "s"), "a": _tag(s, "a")} for s in signatures[:MAX_SIGNATURES]]
    if truncated:
        for s in shown:
            s.update(result="unknown", why="the copy is over the read bound, so its body hash cannot be checked")
        return DkimVerdict("unknown", shown)
    failures: list[str] = []
    lookup = _txt_lookup(nameservers, DNS_TIMEOUT, failures)
    verdict = "fail"
    for idx, sig in enumerate(shown):
        checker = dkim.DKIM(raw, timeout=int(DNS_TIMEOUT))
        failures.clear()
        try:
            ok = checker.verify(idx=idx, dnsfunc=lookup)
            why = "" if ok else failures[-1] if failures else (
                "the signature does not verify (altered header or body, or another key)")
        except dkim.DKIMException as exc:
            ok, why = False, str(exc)
        except Exception as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
        sig.update(result="pass" if ok else "fail", **({"why": why} if why else {}))
        verdict = "pass" if ok else verdict
    return DkimVerdict(verdict, shown)


@dataclass(frozen=True)
class AuthResult:
    authserv_id: str
    method: str  # spf, dkim, dmarc, ...
    result: str  # pass, fail, none, ...
    properties: str  # e.g. header.d=example.com

    def to_dict(self) -> dict[str, str]:
        return {"authserv_id": self.authserv_id, "method": self.method, "result": self.result,
                "properties": self.properties}


_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")


def authentication_results(values: list[str]) -> list[AuthResult]:
    """Every `method=result` of every Authentication-Results field (RFC 8601 §2.2), comments dropped."""
    out = []
    for value in values:
        text = value
        for _ in range(4):  # nested comments, a few levels
            text = _COMMENT.sub(" ", text)
        parts = [p.strip() for p in text.split(";")]
        head = parts[0].split()
        authserv = head[0] if head else ""
        for part in parts[1:]:
            m = re.match(r"^([A-Za-z0-9_-]+)\s*=\s*([A-Za-z0-9_-]+)\s*(.*)$", part, re.DOTALL)
            if m and m.group(1).lower() != "none":
                out.append(AuthResult(authserv, m.group(1).lower(), m.group(2).lower(), " ".join(m.group(3).split())))
    return out


def _shown(results: list[AuthResult]) -> str:
    return ", ".join(f"{r.method}={r.result}" + (f" ({r.properties})" if r.properties else "") for r in results)


def check_results(values: list[str], authserv_id: str, wanted: dict[str, str]) -> list[str]:
    """Why the Authentication-Results `values` (top first, as the header has them) do not give `wanted`
    (method -> result), read only from fields of `authserv_id`: RFC 8601 §5, the others may be forged.
    The topmost trusted field with a result for a method decides; a lower one that disagrees is a problem."""
    fields = [authentication_results([v]) for v in values]
    trusted = [f for f in fields if f and f[0].authserv_id.lower() == authserv_id.lower()]
    others = sorted({f[0].authserv_id for f in fields if f and f not in trusted})
    seen = (f"; fields from {', '.join(others)} are not trusted (RFC 8601 §5)" if others
            else "" if trusted else "; the delivered copy has no Authentication-Results field from it")
    if not trusted:  # one reason, not one per method
        return [f"Authentication-Results: no {' or '.join(wanted)} result from {authserv_id}{seen}"]
    problems = []
    for method, want in wanted.items():
        found = [[r for r in f if r.method == method] for f in trusted]
        found = [f for f in found if f]
        if not found:
            problems.append(f"Authentication-Results: no {method} result from {authserv_id}{seen}")
        elif want not in (r.result for r in found[0]):
            problems.append(f"Authentication-Results: {authserv_id} says {_shown(found[0])}, expected {method}={want}")
        elif any(want not in (r.result for r in f) for f in found[1:]):
            lower = next(f for f in found[1:] if want not in (r.result for r in f))
            problems.append(f"Authentication-Results: {authserv_id} says {method}={want}, but a field below it "
                            f"claiming {authserv_id} says {_shown(lower)} (written before it: a border MTA "
                            "should remove such fields, RFC 8601 §5)")
    return problems
