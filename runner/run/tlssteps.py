"""Steps about the TLS session in force: `expect_tls` judges the certificate and protocol one handshake got."""

from __future__ import annotations

from typing import Any

from runner.errors import StepFailed
from runner.net.tlsclient import name_matches
from runner.plan.options import ExpectTls
from runner.plan.types import Step
from runner.results import StepResult
from runner.run.context import StepContext

__all__ = ["do_expect_tls"]

_TLS_ORDER = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


async def do_expect_tls(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    want: ExpectTls = step.value
    out.label = "check the TLS session"
    out.expected = ", ".join(f"{k} {v}" for k, v in want.given().items())
    facts = session.tls_facts
    if not facts:
        raise StepFailed("no TLS session in force: use starttls first, or target tls: implicit")
    results = _tls_checks(session, want, facts)  # (what was found, the problem or None) per key given
    if want.tlsa is not None:
        from runner.run.dane import tlsa_check

        results.append(await tlsa_check(session, want.tlsa, out, deadline))
    session.note("expect_tls: " + "; ".join(f"{found}: {problem or 'ok'}" for found, problem in results))
    problems = [problem for _found, problem in results if problem]
    if problems:
        raise StepFailed("; ".join(problems))
    return True


def _version_checks(want: ExpectTls, facts: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The negotiated version against min_version and max_version (TLS versions in order, RFC 8446 §4.2.1)."""
    version = facts.get("version")
    found = f"version {version}"
    at = _TLS_ORDER.index(version) if version in _TLS_ORDER else None
    results: list[tuple[str, str | None]] = []
    if want.min_version is not None:
        low = at is not None and at < _TLS_ORDER.index(want.min_version)
        results.append((found, f"version {version} is below {want.min_version}" if low else None))
    if want.max_version is not None:
        high = at is not None and at > _TLS_ORDER.index(want.max_version)
        results.append((found, f"version {version} is above {want.max_version}" if high else None))
    return results


def _tls_checks(session: StepContext, want: ExpectTls, facts: dict[str, Any]) -> list[tuple[str, str | None]]:
    results = _version_checks(want, facts)
    if want.days_valid is not None:
        left = facts.get("days_left", -1)
        results.append((f"certificate valid {facts.get('days_left', '?')} more days",
                        f"certificate expires in {facts.get('days_left', '?')} days, under {want.days_valid}"
                        if left < want.days_valid else None))
    if want.name is not None:
        name = session.text(want.name)
        names = facts.get("san", [])
        results.append((f"name {name}", None if any(name_matches(name, san) for san in names) else
                        f"certificate is not valid for {name} (names: {', '.join(names) or 'none'})"))
    if want.verified is not None:
        results.append((f"verified {facts.get('verified')}", None if facts.get("verified") == want.verified else
                        f"certificate verified is {facts.get('verified')}, expected {want.verified}"))
    return results
