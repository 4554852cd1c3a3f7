"""What to do about a finding, chosen for the case that made it: today, SMTP smuggling.

The advice itself is prose in templates/advice.html.j2; here is only which of it a case gets. A
case whose `smuggle:` step found the server vulnerable gets the remedy for each server smtprun
knows, the one its banner names first (a banner may name none: then the order is fixed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runner.results import FAILED, RECV, CaseResult

__all__ = ["SERVERS", "SmugglingAdvice", "smuggling_advice"]

SERVERS = {"postfix": "Postfix", "exim": "Exim", "sendmail": "Sendmail"}  # key: the name a banner gives
_NAMED = re.compile(r"\b(" + "|".join(SERVERS) + r")\b", re.IGNORECASE)


@dataclass(frozen=True)
class SmugglingAdvice:
    servers: tuple[str, ...]  # keys of SERVERS in the order shown
    named: str  # the server the banner names ("Postfix"), "" when it names none smtprun knows


def _banner_names(case: CaseResult) -> str:
    """The key of the server the greeting names (`220 mx ESMTP Postfix (Debian/GNU)`), else ""."""
    greeting = next((e.data for e in case.transcript if e.direction == RECV), b"")
    found = _NAMED.search(greeting.split(b"\n", 1)[0].decode("latin-1"))
    return found[1].lower() if found else ""


def smuggling_advice(case: CaseResult) -> SmugglingAdvice | None:
    """The remedies for a case whose smuggle: step found the server vulnerable; None for any other case."""
    # a smuggle: step fails with a verdict only when the server took the smuggled commands
    if not any(s.action == "smuggle" and s.status == FAILED and s.verdict for s in case.steps):
        return None
    named = _banner_names(case)
    order = ([named] if named else []) + [key for key in SERVERS if key != named]
    return SmugglingAdvice(tuple(order), SERVERS.get(named, ""))
