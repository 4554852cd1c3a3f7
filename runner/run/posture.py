"""A mail domain's posture judged in `expect_dns`: SPF evaluated (`spf: pass`, `spf: {result: pass, ip: ...}`) and
DMARC (`dmarc: valid`, `dmarc: {p: reject}`), beside the `present` forms of runner/run/dnssteps.py. Each check
returns its problem (None when it passes) and leaves its facts in the step's JSON details, failed or not."""

from __future__ import annotations

from typing import Any

from runner.errors import StepFailed
from runner.net.address import ip_version
from runner.net.resolver import Lookups, ResolverConfig
from runner.results import StepResult
from runner.run.context import StepContext

__all__ = ["dmarc_problem", "spf_problem"]


def _spf_spec(session: StepContext, value: Any) -> dict[str, Any]:
    """`spf: pass`, `spf: valid` or `spf: {result: pass, ip: ..., max_lookups: ...}` as one dict, the ip rendered
    and checked."""
    if value == "valid":
        spec: dict[str, Any] = {}
    else:
        spec = {"result": value} if isinstance(value, str) else dict(value)
    if "ip" in spec:
        spec["ip"] = session.text(str(spec["ip"]))
        if not ip_version(spec["ip"]):
            raise StepFailed(f"expect_dns spf ip: {spec['ip']!r} is not an IP address")
    elif session.local_address:
        spec["ip"] = session.local_address
    else:
        raise StepFailed("expect_dns spf: the address this case connected from is not known; give spf.ip")
    return spec


async def spf_problem(session: StepContext, value: Any, config: ResolverConfig, domain: str,
                      out: StepResult) -> str | None:
    """The domain's SPF for the address (the case's own, or `ip:`): its result, limits and errors judged."""
    from runner.net.spf import MAX_LOOKUPS, check_spf

    spec = _spf_spec(session, value)
    async with Lookups() as lookups:
        check = await check_spf(domain, spec["ip"], config, lookups)
    out.details = {**(out.details or {}), "spf": check.facts()}
    for warning in check.warnings:
        session.warn(f"SPF: {warning}")
    problems = []
    expected = spec.get("result")
    if expected and check.result != expected:
        problems.append(f"the result for {check.ip} is {check.result}, expected {expected}")
    if check.record is None and not expected and not check.errors:
        problems.append("no SPF record")
    limit = spec.get("max_lookups", MAX_LOOKUPS)
    if limit < MAX_LOOKUPS and check.lookups > limit:
        problems.append(f"{check.lookups} SPF DNS lookups, over the plan's max_lookups {limit}")
    problems += check.errors
    return f"SPF of {check.domain}: " + "; ".join(problems) if problems else None


async def dmarc_problem(session: StepContext, value: Any, config: ResolverConfig, domain: str,
                        out: StepResult) -> str | None:
    """The domain's DMARC record (its own or its organisational domain's): valid, and with the policy asked for."""
    from runner.net.dmarc import check_dmarc

    async with Lookups() as lookups:
        check = await check_dmarc(domain, config, lookups)
    out.details = {**(out.details or {}), "dmarc": check.facts()}
    for warning in check.warnings:
        session.warn(f"DMARC: {warning}")
    problems = list(check.errors)
    wanted = value if isinstance(value, dict) else {}
    where = check.location or f"_dmarc.{check.domain}"
    if "p" in wanted and check.record and check.policy != wanted["p"]:
        problems.append(f"the policy is {check.policy} ({where}), expected {wanted['p']}")
    if "pct" in wanted and check.record and check.facts()["pct"] != wanted["pct"]:
        problems.append(f"pct is {check.facts()['pct']} ({where}), expected {wanted['pct']}")
    return f"DMARC of {check.domain}: " + "; ".join(problems) if problems else None
