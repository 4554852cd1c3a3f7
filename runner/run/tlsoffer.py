"""The `tls_offer` step: scan what the server offers over TLS (runner/net/tlsscan.py) on connections of its own,
then judge it (runner/run/tlspolicy.py). The case's own connection is left as it is."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from runner.errors import ConnectionLost, StepFailed
from runner.net.tlsscan import Offer, RateLimited, ScanTarget, scan
from runner.net.transport import Connector, open_connection
from runner.plan.options import TlsOffer
from runner.plan.types import Step
from runner.results import StepResult
from runner.run import tlspolicy
from runner.run.context import StepContext

__all__ = ["do_tls_offer"]


def _target(session: StepContext, options: TlsOffer) -> ScanTarget:
    host, _, port = session.peer.rpartition(":")
    name = session.text(options.name or session.target.server_name or "") or session.server_host or host
    cafile = session.text(options.cafile or session.target.cafile or "") or None
    implicit = session.target.tls == "implicit"
    if not implicit and session.keywords and "STARTTLS" not in session.keywords:
        raise StepFailed("the server did not offer STARTTLS in its EHLO reply: no TLS offer to scan")
    return ScanTarget(host.strip("[]"), int(port), name, starttls=not implicit, cafile=cafile)


def _connector(session: StepContext) -> Connector:
    """The run's connector (its per-host limit, runner/run/hostslots.py, holds for the scan too)."""
    connector: Connector = getattr(session, "connector", None) or open_connection
    limit = getattr(connector, "limit", None)
    if limit is not None and limit < 2:
        raise StepFailed("tls_offer needs a second connection to the server while the case holds its own: "
                         "run with --per-host 2 or more")
    return connector


async def do_tls_offer(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    options: TlsOffer = step.value
    want = tlspolicy.rules(options)
    out.label = f"scan the TLS offer{f' ({want.profile})' if want.profile else ''}"
    out.expected = f"versions {', '.join(sorted(want.versions))}; no {', '.join(sorted(want.forbid)) or 'suite'} " \
                   f"forbidden; chain complete and valid"
    connector = _connector(session)
    target = _target(session, options)
    t0 = time.monotonic()
    try:
        offer = await scan(target, connector, deadline)
    except RateLimited as exc:
        raise StepFailed(f"{exc} for {time.monotonic() - t0:.1f}s: rate-limited, the offer is unknown "
                         f"(give the step a longer timeout)") from None
    except TimeoutError:
        raise StepFailed(f"the scan of {target.host}:{target.port} did not finish within the step's timeout "
                         f"({time.monotonic() - t0:.1f}s): give the step a longer timeout") from None
    except (ConnectionLost, OSError) as exc:
        raise StepFailed(f"cannot scan {target.host}:{target.port}: {exc}") from None
    failures, notes = tlspolicy.judge(offer, want)
    out.details = _details(offer, failures, notes)
    for line in _summary(offer) + [f"warning: {n}" for n in notes] + [f"finding: {f}" for f in failures]:
        session.note(line)
    if failures:
        raise StepFailed("; ".join(failures))
    return True


def _summary(offer: Offer) -> list[str]:
    lines = [f"{version}: {', '.join(suites)}" for version, suites in offer.versions.items()]
    lines += [f"groups {version}: {', '.join(groups)}" for version, groups in offer.groups.items()]
    if offer.dh:
        lines.append(f"DH: {offer.dh['group']} ({offer.dh['bits']} bits)")
    said = {True: "yes", False: "no", None: "not tried"}
    lines.append(f"secure renegotiation: {said[offer.secure_renegotiation]}; compression: "
                 f"{offer.compression or 'not tried'}; OCSP stapling: {said[offer.ocsp_stapling]}")
    lines.append(f"scan: {offer.connections} connections in {offer.seconds:g}s"
                 + (f", rate-limited {offer.rate_limited} times (backed off)" if offer.rate_limited else ""))
    return lines


def _details(offer: Offer, failures: list[str], notes: list[str]) -> dict[str, Any]:
    facts = dataclasses.asdict(offer)
    facts["server_order"] = bool(offer.server_order) and all(offer.server_order.values())
    facts["server_order_by_version"] = offer.server_order
    facts["failures"], facts["warnings"] = failures, notes
    return facts
