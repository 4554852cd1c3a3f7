"""What an MX lookup means for the cases routed by it (RFC 5321 §5.1): why no host can be tried, which hosts a
route leaves out, and the lookup's notes for the report."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from runner.net.resolver import MAX_IN_FLIGHT
from runner.plan.types import Target
from runner.run.connect import Hop

if TYPE_CHECKING:
    from runner.net.resolver import Lookups

__all__ = ["FLEET_RESOLVING", "fleet_route", "lookup_problems", "mx_notes", "no_route", "route_of"]

# `mx:` domains of a fleet looked up at once: enough to keep the run's DNS cap busy (each domain asks its MX, then
# A and AAAA of its hosts), few enough that a domain's lookups are done before the next ones begin, so its
# sessions start while the rest are looked up, and 10,000 waiting lookups are not held in memory at once
FLEET_RESOLVING = 2 * MAX_IN_FLIGHT


async def fleet_route(target: Target, lookups: Lookups,
                      resolving: asyncio.Semaphore) -> tuple[tuple[Hop, ...] | None, str | None, list[str]]:
    """A fleet's `mx:domain` target: (its route, why it has none, the lookup's notes), its MX hosts looked up
    when one of the `resolving` places is free. The lookup takes no session slot."""
    from runner.net.dns import DnsError, config_for, resolve_mx

    try:
        async with resolving:
            found = await resolve_mx(target.mx or "", config_for(target.nameservers, target.dns_timeout,
                                                                 target.families), lookups)
    except (DnsError, ValueError) as exc:
        return None, str(exc), []
    route = route_of(found)
    return route, None if route else no_route(found), mx_notes(found)


def route_of(found: Any) -> tuple[Hop, ...]:
    """Every address of every MX host, in order of preference (RFC 5321 §5.1): where a case tries to connect."""
    return tuple(Hop(ex.host, a, ex.preference) for ex in found.exchangers for a in ex.addresses)


def no_route(found: Any) -> str:
    """Why no exchanger of an MX lookup can be tried: each one's own reason (RFC 5321 §5.1)."""
    reasons = "; ".join(f"{ex.host}: {ex.error}" for ex in found.exchangers if ex.error)
    return "no MX host has an address" + (f" ({reasons})" if reasons else "")


def lookup_problems(found: Any) -> tuple[str, ...]:
    """The MX hosts the route leaves out, or uses in part, and why: shown with each case, not only in the
    plan's lookup notes, since they decide which host the case reached."""
    return tuple(f"MX {ex.host}: not tried: {ex.error}" if not ex.addresses else f"MX {ex.host}: {ex.partly}"
                 for ex in found.exchangers if (ex.error and not ex.addresses) or ex.partly)


def mx_notes(found: Any) -> list[str]:
    """What the MX lookup found, for the report: every exchanger, why one has no address, and which family
    failed beside the addresses of another ("127.0.0.1; DNS timeout after 5s for mx1.example.com AAAA ...")."""
    head = f"MX for {found.domain}" + (" (no MX record: the domain's own address, RFC 5321 §5.1)"
                                        if found.implicit else "")
    rows = []
    for ex in found.exchangers:
        row = f"{ex.preference:>5} {ex.host}: {', '.join(ex.addresses) or ex.error}"
        rows.append(f"{row}; {ex.partly}" if ex.partly else row)
    if found.omitted:
        rows.append(f"({found.omitted} more MX host{'s' * (found.omitted > 1)} past the first {len(found.exchangers)}: "
                    "not looked up, not tried)")
    return [head, *rows]
