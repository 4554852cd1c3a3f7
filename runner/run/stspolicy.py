"""A mail domain's transport-security posture judged in `expect_dns`: MTA-STS (`mta_sts: valid`, `required`,
`{mode: enforce}`; RFC 8461) and TLS reporting (`tls_rpt: valid`, `required`; RFC 8460). Each check returns its
problem (None when it passes) and leaves its facts in the step's JSON details, failed or not."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from runner.errors import StepFailed
from runner.net import mtasts
from runner.net.resolver import DnsError, Lookups, ResolverConfig
from runner.results import StepResult
from runner.run.context import StepContext

__all__ = ["mta_sts_problem", "tls_rpt_problem"]


@dataclass(frozen=True)
class _StsSpec:
    required: bool  # a domain without MTA-STS fails (else: a warning, RFC 8461 makes it optional)
    mode: str | None
    policy_port: int
    cafile: str | None


def _sts_spec(session: StepContext, want: dict[str, Any]) -> _StsSpec:
    """The step's MTA-STS options: `mta_sts: valid | required | {mode, policy_port}` and `cafile:` beside it."""
    value = want["mta_sts"]
    spec = value if isinstance(value, dict) else {}
    port_text = session.text(str(spec.get("policy_port", 443)))
    if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
        raise StepFailed(f"expect_dns mta_sts policy_port: {port_text!r} is not a TCP port")
    cafile = session.text(str(want.get("cafile") or "")) or None
    return _StsSpec(value == "required" or "mode" in spec, spec.get("mode"), int(port_text), cafile)


async def mta_sts_problem(session: StepContext, want: dict[str, Any], config: ResolverConfig, domain: str,
                          out: StepResult) -> str | None:
    """The domain's MTA-STS record and policy, the policy against its MX hosts and this case's MX certificate."""
    spec = _sts_spec(session, want)
    check = mtasts.MtaStsCheck(domain.lower().rstrip("."), mtasts.policy_url(domain, spec.policy_port))
    async with Lookups() as lookups:
        await mtasts.find_record(check, config, lookups)
        if check.published:
            await mtasts.find_mx_hosts(check, config, lookups)
            await _fetch_policy(check, spec, config, lookups, session.target.timeout)
    mtasts.match_mx(check)
    _mx_certificate(session, check)
    problems = list(check.errors)
    if not check.published and not check.errors:
        absent = f"no MTA-STS record at _mta-sts.{check.domain} (RFC 8461 §3.1)"
        if spec.required:
            problems.append(absent)
        else:
            check.warnings.append(absent + ": MTA-STS is optional, senders deliver without it")
    mode = check.policy.mode if check.policy else None
    if spec.mode and check.policy and mode != spec.mode:
        problems.append(f"the policy's mode is {mode}, expected {spec.mode}")
    out.details = {**(out.details or {}), "mta_sts": check.facts()}
    for warning in check.facts()["warnings"]:
        session.warn(f"MTA-STS: {warning}")
    return f"MTA-STS of {check.domain}: " + "; ".join(problems) if problems else None


async def _fetch_policy(check: mtasts.MtaStsCheck, spec: _StsSpec, config: ResolverConfig, lookups: Lookups,
                        timeout: float) -> None:
    """The policy fetched from the policy host (RFC 8461 §3.3), parsed; what is wrong noted on check."""
    from runner.net import policyfetch
    from runner.net.dns import resolve_host
    from runner.net.tls import client_context

    host = f"mta-sts.{check.domain}"
    try:
        check.policy_host_addresses = list(await resolve_host(host, config, lookups))
    except DnsError as e:
        check.errors.append(f"the policy host {host} has no address: {e}")
        return
    try:
        context = client_context(True, spec.cafile)
    except (OSError, ssl.SSLError) as e:
        raise StepFailed(f"expect_dns cafile {spec.cafile}: cannot be used: {e}") from None
    try:
        got = await policyfetch.fetch(host, check.policy_host_addresses, spec.policy_port, mtasts.WELL_KNOWN,
                                      context, timeout)
    except policyfetch.PolicyFetchFailed as e:
        check.errors.append(str(e))
        return
    _judge_answer(check, got)


def _judge_answer(check: mtasts.MtaStsCheck, got: Any) -> None:
    """The HTTP answer as RFC 8461 §3.3 wants it: 200, no redirect, text/plain, at most 64 KiB, then parsed."""
    check.status, check.content_type, check.body_bytes = got.status, got.content_type, len(got.body)
    if 300 <= got.status < 400:
        check.errors.append(f"{check.url} answered {got.status} {got.reason}, a redirect to {got.location or '?'}: "
                            "senders must not follow redirects (RFC 8461 §3.3)")
        return
    if got.status != 200:
        check.errors.append(f"{check.url} answered {got.status} {got.reason}, not 200 (RFC 8461 §3.3)")
        return
    if got.oversized:
        check.errors.append(f"the policy at {check.url} is larger than 64 KiB: senders do not read it "
                            "(RFC 8461 §3.3)")
        return
    media = (got.content_type or "").split(";")[0].strip().lower()
    if media != "text/plain":
        check.errors.append(f"the policy is served as {got.content_type or 'no media type'}, not text/plain "
                            "(RFC 8461 §3.3)")
        return
    try:
        text = got.body.decode("utf-8")
    except UnicodeDecodeError:
        check.errors.append("the policy is not UTF-8 text (RFC 8461 §3.2)")
        return
    check.policy = mtasts.parse_policy(text)
    check.errors += [f"the policy: {error}" for error in check.policy.errors]


def _mx_certificate(session: StepContext, check: mtasts.MtaStsCheck) -> None:
    """This case's MX certificate, where the case is connected to one of the domain's MX hosts over TLS: valid for
    the MX name and verified (RFC 8461 §4.2); a failure under enforce, a warning under testing."""
    host = session.server_host.lower().rstrip(".")
    policy = check.policy
    facts = session.tls_facts
    if host not in check.mx_hosts or policy is None or policy.mode not in ("enforce", "testing"):
        return
    if not facts:
        check.mx_certificates[host] = {"checked": False, "reason": "no TLS session in force in this case"}
        return
    names = facts.get("san", [])
    named = any(mtasts.mx_matches(host, name) for name in names)
    check.mx_certificates[host] = {"checked": True, "verified": bool(facts.get("verified")), "valid_for_name": named,
                                   "names": names}
    problem = None
    if not facts.get("verified"):
        problem = f"the certificate of the MX host {host} was not verified (RFC 8461 §4.2)"
    elif not named:
        problem = f"the certificate of the MX host {host} is not valid for its name (names: " \
                  f"{', '.join(names) or 'none'}; RFC 8461 §4.2)"
    if problem and policy.mode == "enforce":
        check.errors.append(problem)
    elif problem:
        check.warnings.append(problem + "; in testing mode senders deliver anyway")


async def tls_rpt_problem(session: StepContext, want: dict[str, Any], config: ResolverConfig, domain: str,
                          out: StepResult) -> str | None:
    """The domain's `_smtp._tls` record (RFC 8460 §3): one, v=TLSRPTv1, its rua= mailto: or https: URIs."""
    from runner.net.tlsrpt import check_tlsrpt

    async with Lookups() as lookups:
        check = await check_tlsrpt(domain, config, lookups)
    problems = list(check.errors)
    if check.record is None and not check.errors:
        absent = f"no TLS-RPT record at _smtp._tls.{check.domain} (RFC 8460 §3)"
        if want["tls_rpt"] == "required":
            problems.append(absent)
        else:
            check.warnings.append(absent + ": TLS reporting is optional, senders send no reports")
    out.details = {**(out.details or {}), "tls_rpt": check.facts()}
    for warning in check.warnings:
        session.warn(f"TLS-RPT: {warning}")
    return f"TLS-RPT of {check.domain}: " + "; ".join(problems) if problems else None
