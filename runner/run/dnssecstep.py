"""`expect_dns: {dnssec: secure}`: the DNSSEC status of each name a sender looks up to reach the mail host (the
mail domain's MX, the host's address, its TLSA records), as the plan's validating resolver says it
(runner/net/dnssec.py). Every name must have the status the plan expects, or, with `valid`, must not be bogus;
each name's status is in the details."""

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


# `valid`, what an audit asks: bogus fails (validating senders refuse the answers); unsigned names and a resolver
# that does not validate are warned of, since DNSSEC is optional for mail (RFC 7672 §1.3) and is not judged here
_WARNED = {"insecure": "not signed (no AD bit, no RRSIG in the answers of {servers}): {names}; DNSSEC is optional, "
                       "but without it DANE cannot apply (RFC 7672 §2.2)",
           "unknown": "no DNSSEC verdict for {names}: {servers} gave no AD bit on signed answers or no answer (not "
                      "a validating resolver, RFC 4035 §3.2.3); name one with --nameserver to judge DNSSEC"}


def _warnings(expected: str, answers: list[Any]) -> list[str]:
    """Under `valid`, one warning per status that is neither secure nor bogus, naming each name that has it."""
    if expected != "valid":
        return []
    said = []
    for status, text in _WARNED.items():
        some = [a for a in answers if a.status == status]
        if some:
            servers = ", ".join(dict.fromkeys(a.server for a in some))
            said.append(text.format(servers=servers, names=", ".join(f"{a.name} {a.rdtype}" for a in some)))
    return said


def _problem(expected: str, answer: Any) -> str | None:
    if expected == "valid":
        return f"{answer.name} {answer.rdtype} is bogus ({answer.reason})" if answer.status == "bogus" else None
    if answer.status != expected:
        return f"{answer.name} {answer.rdtype} is {answer.status}, expected {expected} ({answer.reason})"
    return None


async def dnssec_problem(session: StepContext, value: Any, config: ResolverConfig, domain: str,
                         out: StepResult) -> str | None:
    """Each name's DNSSEC status against the one expected (`secure`, `insecure` or `bogus`), or, with `valid`,
    not bogus."""
    from runner.net.dnssec import validated

    expected = str(value)
    names = _names(session, config, domain)
    answers = await asyncio.gather(*(validated(name, rdtype, config) for name, rdtype in names),
                                   return_exceptions=True)
    facts, problems, found = [], [], []
    for (name, rdtype), answer in zip(names, answers, strict=True):
        if isinstance(answer, DnsError):
            facts.append({"name": name, "type": rdtype, "status": "unknown", "reason": str(answer)})
            problems.append(f"{name} {rdtype}: {answer}")
            continue
        if isinstance(answer, BaseException):
            raise answer
        facts.append(answer.facts())
        found.append(answer)
        problems += [problem] if (problem := _problem(expected, answer)) else []
        if answer.status == "secure" and not answer.local:
            session.note(f"DNSSEC: the AD bit is trusted from {answer.server}, not on this host (RFC 4035 §4.9.3)")
    warnings = _warnings(expected, found)
    out.details = {**(out.details or {}), "dnssec": {"expected": expected, "names": facts, "warnings": warnings}}
    session.note("DNSSEC: " + "; ".join(f"{f['name']} {f['type']} {f['status']}" for f in facts))
    for warning in warnings:
        session.warn(f"DNSSEC: {warning}")
    return "DNSSEC: " + "; ".join(problems) if problems else None
