"""What an MX lookup means for the cases routed by it (RFC 5321 §5.1): why no host can be tried, which hosts a
route leaves out, and the lookup's notes for the report."""

from __future__ import annotations

from typing import Any

from runner.run.connect import Hop

__all__ = ["lookup_problems", "mx_notes", "no_route", "route_of"]


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
