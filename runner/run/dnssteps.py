"""Steps about DNS: `expect_dns` checks a mail admin's list (PTR against the banner, SPF, DMARC, MTA-STS, TLS-RPT,
DKIM keys and blocklists of the mail domain, DANE TLSA of the host) through the run's resolver settings."""

from __future__ import annotations

import asyncio
import importlib
import time
from typing import Any

from runner.errors import StepFailed
from runner.net import tls as tlsinfo
from runner.net.address import ip_version
from runner.plan.types import Step
from runner.results import StepResult
from runner.run import posture
from runner.run.context import StepContext

__all__ = ["do_expect_dns"]


async def do_expect_dns(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    """The DNS checks of a mail admin's checklist: PTR vs banner, SPF, DMARC, MTA-STS, TLS-RPT, DKIM keys,
    blocklists, DANE TLSA."""
    want = step.value
    out.label = "check DNS: " + ", ".join(k for k in want if k not in ("domain", "cafile"))
    out.expected = ", ".join(f"{k} {_shown(session, v)}" for k, v in want.items())
    from runner.net.dns import config_for

    t = session.target
    config = config_for(t.nameservers, t.dns_timeout, t.families)
    domain = session.text(want.get("domain") or t.mx or t.domain or "") or session.server_host
    if ip_version(domain) and any(k in want for k in _NEEDS_DOMAIN):
        raise StepFailed(f"no mail domain to look up: the run connects to the address {domain}; give the plan "
                         "target.mx or the step expect_dns.domain")
    try:
        problems = await asyncio.wait_for(_dns_checks(session, want, config, domain, out, deadline),
                                          max(0.001, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        raise StepFailed("DNS checks did not finish within the step's timeout") from None
    session.note("expect_dns: " + "; ".join(f"{name}: {problem or 'ok'}" for name, problem in problems))
    found = [p for _name, p in problems if p]
    if found:
        raise StepFailed("; ".join(found))
    return True


def _shown(session: StepContext, value: Any) -> Any:
    """An option as the step runs it: its templates rendered, however deep (for the expected line)."""
    if isinstance(value, str):
        return session.text(value)
    if isinstance(value, dict):
        return {k: _shown(session, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(session, v) for v in value]
    return value


_DOMAIN_CHECKS = ("spf", "dmarc", "mta_sts", "tls_rpt", "dkim", "dnsbl")  # of the mail domain, not the host
# a blocklist is asked about an address (dnsbl.address, else the one connected to): it needs no mail domain
_NEEDS_DOMAIN = tuple(kind for kind in _DOMAIN_CHECKS if kind != "dnsbl")
_EVALUATED = {"spf": posture.spf_problem, "dmarc": posture.dmarc_problem}  # the forms other than `present`
# judged with the step's other options (mta_sts with cafile:); imported when a step uses them
_WHOLE_STEP = {"mta_sts": ("stspolicy", "mta_sts_problem"), "tls_rpt": ("stspolicy", "tls_rpt_problem"),
               "dkim": ("senderposture", "dkim_problem"), "dnsbl": ("senderposture", "dnsbl_problem")}


async def _judged_with_step(kind: str, session: StepContext, want: dict[str, Any], config: Any,
                            domain: str, out: StepResult) -> str | None:
    module, name = _WHOLE_STEP[kind]
    check = getattr(importlib.import_module(f"runner.run.{module}"), name)
    return await check(session, want, config, domain, out)


async def _dane(session: StepContext, want: dict[str, Any], out: StepResult, deadline: float) -> str | None:
    """`tlsa: match`, judged as `expect_tls: {tlsa: match}` judges it (runner/run/dane.py): records that are not
    DNSSEC-secure are not usable, whether they match or not (RFC 7672 §2.2)."""
    if not tlsinfo.peer_chain(session.tls_object):
        return "no TLS session in force: use starttls first, or target tls: implicit"
    from runner.run.dane import tlsa_check

    _found, problem = await tlsa_check(session, want["tlsa"], out, deadline)
    return problem


async def _dns_checks(session: StepContext, want: dict[str, Any], config: Any,
                      domain: str, out: StepResult, deadline: float) -> list[tuple[str, str | None]]:
    """(check, its problem or None) for each check asked for, in order."""
    from runner.net import dns

    problems: list[tuple[str, str | None]] = []
    if "ptr_matches_banner" in want:
        address = session.peer.rsplit(":", 1)[0].strip("[]")
        names = session.greeting_hosts or [session.server_host]
        problems.append((f"PTR of {address}", await dns.ptr_check(address, names, config)))
    for kind in _DOMAIN_CHECKS:
        if kind in _EVALUATED and want.get(kind, "present") != "present":  # evaluated, not only present
            problems.append((f"{kind} of {domain}", await _EVALUATED[kind](session, want[kind], config, domain, out)))
        elif kind in _WHOLE_STEP and want.get(kind, "present") != "present":
            problems.append((f"{kind} of {domain}", await _judged_with_step(kind, session, want, config, domain, out)))
        elif kind in want:
            problems.append((f"{kind} of {domain}", await dns.txt_present(kind, domain, config)))
    if "tlsa" in want:
        where = f"TLSA of _{session.port()}._tcp.{session.server_host}"
        problems.append((where, await _dane(session, want, out, deadline)))
    if "dnssec" in want:
        from runner.run.dnssecstep import dnssec_problem

        problems.append((f"DNSSEC of {domain}", await dnssec_problem(session, want["dnssec"], config, domain, out)))
    return problems
