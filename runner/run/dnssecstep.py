"""`expect_dns: {dnssec: secure}`: the DNSSEC status of each name a sender looks up to reach the mail host (the
mail domain's MX, the host's address, its TLSA records), as the plan's validating resolver says it
(runner/net/dnssec.py). Every name must have the status the plan expects; each name's status is in the details."""

from __future__ import annotations

import asyncio
from typing import Any

from runner.errors import StepFailed
from runner.net.address import ip_version
from runner.net.resolver import FAMILIES, DnsError, ResolverConfig
from runner.results import StepResult
from runner.run.context import StepContext

__all__ = ["dnssec_problem"]


def _names(session: StepContext, config: ResolverConfig, domain: str) -> list[tuple[str, str]]:
    """(name, type) a sending MTA asks on its way to this host: the domain's MX, the host's first address family,
    the host's TLSA (RFC 7672 §2.2: each must be secure for DANE to apply)."""
    names = [] if ip_version(domain) else [(domain, "MX")]
    host = session.server_host.rstrip(".")
    if host and not ip_version(host):
        names += [(host, FAMILIES[config.families[0]]), (f"_{session.port()}._tcp.{host}", "TLSA")]
    if not names:
        raise StepFailed(f"no name to check DNSSEC for: the case connects to the address {host}; give the plan "
                         "target.mx or the step expect_dns.domain")
    return list(dict.fromkeys(names))


async def dnssec_problem(session: StepContext, value: Any, config: ResolverConfig, domain: str,
                         out: StepResult) -> str | None:
    """Each name's DNSSEC status against the one expected (`secure`, `insecure` or `bogus`)."""
    from runner.net.dnssec import validated

    expected = str(value)
    names = _names(session, config, domain)
    answers = await asyncio.gather(*(validated(name, rdtype, config) for name, rdtype in names),
                                   return_exceptions=True)
    facts, problems = [], []
    for (name, rdtype), answer in zip(names, answers, strict=True):
        if isinstance(answer, DnsError):
            facts.append({"name": name, "type": rdtype, "status": "unknown", "reason": str(answer)})
            problems.append(f"{name} {rdtype}: {answer}")
            continue
        if isinstance(answer, BaseException):
            raise answer
        facts.append(answer.facts())
        if answer.status != expected:
            problems.append(f"{name} {rdtype} is {answer.status}, expected {expected} ({answer.reason})")
        if answer.status == "secure" and not answer.local:
            session.note(f"DNSSEC: the AD bit is trusted from {answer.server}, not on this host (RFC 4035 §4.9.3)")
    out.details = {**(out.details or {}), "dnssec": {"expected": expected, "names": facts}}
    session.note("DNSSEC: " + "; ".join(f"{f['name']} {f['type']} {f['status']}" for f in facts))
    return "DNSSEC: " + "; ".join(problems) if problems else None
