"""`expect_tls: {tlsa: ...}`: DANE (RFC 7672) for the TLS session in force. The TLSA records of
`_<port>._tcp.<host>` are asked of the plan's name servers with their DNSSEC status, and judged against the chain
the server sent (runner/net/dane.py); records that are not secure are not usable (RFC 7672 §2.2)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from runner.errors import StepFailed
from runner.net import tls as tlsinfo
from runner.net.address import ip_version
from runner.results import StepResult
from runner.run.context import StepContext

__all__ = ["tlsa_check"]


def _options(value: Any) -> dict[str, Any]:
    """`tlsa: match` or `tlsa: {rollover: warn | required}` as one dict (the step's options read in one place)."""
    return {"rollover": "warn"} if value == "match" else {"rollover": "warn", **value}


def _unusable(name: str, status: str, reason: str, found: bool) -> str | None:
    """Why the TLSA answer cannot be used for DANE whatever it holds (RFC 7672 §2.2), or None when it is secure."""
    if status == "secure":
        return None if found else f"no TLSA record at {name} (a signed denial): the host does not publish DANE"
    if status == "bogus":
        return (f"the TLSA answer for {name} is bogus ({reason}): a DANE sender defers mail to this host "
                "(RFC 7672 §2.2)")
    if status == "insecure":
        what = "the TLSA records" if found else "the answer (no TLSA record)"
        return f"{what} at {name} are not DNSSEC-signed (insecure): DANE without DNSSEC is not usable " \
               "(RFC 7672 §2.2)"
    return f"the DNSSEC status of {name} TLSA is unknown ({reason}): DANE cannot be judged"


async def tlsa_check(session: StepContext, value: Any, out: StepResult, deadline: float) -> tuple[str, str | None]:
    """(what was found, the problem or None) for the TLSA records of the host connected to."""
    from runner.net.dane import TlsaRecord, judge
    from runner.net.dns import config_for
    from runner.net.dnssec import validated

    options = _options(value)
    host, port = session.server_host, session.port()
    if ip_version(host):
        raise StepFailed(f"DANE needs the host's name, and this case connected to the address {host}: give the "
                         "plan target.mx (the MX host is the TLSA base domain, RFC 7672 §2.2.3)")
    name = f"_{port}._tcp.{host.rstrip('.')}"
    t = session.target
    config = config_for(t.nameservers, t.dns_timeout, t.families)
    try:
        answer = await asyncio.wait_for(validated(name, "TLSA", config), max(0.001, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        raise StepFailed(f"the TLSA lookup of {name} did not finish within the step's timeout") from None
    records = [TlsaRecord(r.usage, r.selector, r.mtype, r.cert) for r in answer.records]
    verdict = judge(records, tlsinfo.peer_chain(session.tls_object), [host.rstrip("."), *_domain(session)])
    facts: dict[str, Any] = {"name": name, "dnssec": answer.status, "dnssec_reason": answer.reason,
                             "server": answer.server, "records": [str(r) for r in records],
                             "matched": list(verdict.matched), "unmatched": list(verdict.unmatched),
                             "ignored": list(verdict.ignored), "rollover": verdict.rollover,
                             "warnings": list(verdict.warnings) if answer.status == "secure" else []}
    out.details = {**(out.details or {}), "tlsa": facts}
    if answer.status == "secure" and not answer.local:
        session.note(f"DANE: the AD bit is trusted from {answer.server}, not on this host (RFC 4035 §4.9.3)")
    for warning in verdict.warnings if answer.status == "secure" else ():  # records a sender does not use
        session.note(f"DANE warning: {warning}")
    problems = [p for p in (_unusable(name, answer.status, answer.reason, bool(records)),) if p]
    problems += list(verdict.problems)
    if options["rollover"] == "required" and records and not verdict.rollover:
        problems += list(verdict.warnings)
    found = f"TLSA {name} {answer.status}: " + (", ".join(verdict.matched) or "no match")
    return found, "; ".join(problems) or None


def _domain(session: StepContext) -> list[str]:
    """The mail domain, a reference identifier beside the MX host (RFC 7672 §3.2.3), when the case has one."""
    domain = session.target.mx or session.target.domain
    return [session.text(domain).rstrip(".")] if domain else []
