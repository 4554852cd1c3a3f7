"""A plan with many cases (a fleet, a large matrix) as a page a browser opens at once, whatever its size.

Up to FULL_CASES cases, every case is rendered whole. Beyond that the page leads with what went
wrong: failures grouped by reason, every failing case in one table row with its failing step and its
transcript, the first FULL_FAILURES of them whole; passing and skipped cases become compact rows, and
a table per address counts the cases. The embedded run data keeps every failing case whole and the
first KEEP_PASSING_TRANSCRIPTS passing ones; of the others, what later reports compare (name, status,
where, when, each step's verdict) — the --json file has them all.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from runner.report.format import format_seconds, printable, why_failed
from runner.results import FAILED, PASSED, SKIPPED, CaseResult, PlanResult, StepResult

__all__ = [
    "FULL_CASES",
    "FULL_FAILURES",
    "Digest",
    "Shedder",
    "Views",
    "digest",
    "lighten",
    "peers_line",
]

FULL_CASES = 1_000  # up to this many cases, each is rendered whole (steps, transcript)
FULL_FAILURES = 100  # beyond it, the first failing cases rendered whole; the others are table rows
KEEP_PASSING_TRANSCRIPTS = 100  # beyond it, passing cases' transcripts kept in the embedded data
MAX_PEERS_NAMED = 10  # the header names this many connected addresses, then counts them
MAX_REASONS = 50  # rows of the failures-by-reason table
MAX_ADDRESSES = 500  # rows of the by-address table
EXAMPLES = 3  # cases named beside each reason
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class Row:
    """One case as a table row."""

    anchor: str  # "case-N", the case's anchor when it is rendered whole
    whole: bool  # rendered whole further down the page
    name: str
    status: str
    target: str
    peer: str
    duration: str
    reason: str
    step: Any  # the failing step's view (view.StepView), None when no step failed
    transcript: list[Any]  # a failing case not shown whole: its transcript's rows (view.transcript_rows)


@dataclass(frozen=True)
class Digest:
    reasons: list[tuple[Row, int, list[Row]]]  # the first case failing so, how many do, a few of them
    reasons_hidden: int
    failed: list[Row]
    passed: list[Row]
    skipped: list[Row]
    addresses: list[tuple[str, int, int, int]]  # address, passed, failed, skipped
    addresses_hidden: int
    whole: list[tuple[int, CaseResult]]  # the failing cases rendered whole, by their number


@dataclass(frozen=True)
class Views:
    """How the page shows a step and a transcript (runner.report.view), for the rows of failing cases."""

    step: Callable[[StepResult], Any]
    transcript: Callable[[CaseResult], list[Any]]


def _address(case: CaseResult) -> str:
    """The host a case connected to (or aimed at), without its port."""
    where = case.peer or case.target or ""
    if where.startswith("["):
        return where[: where.find("]") + 1] or where
    host, colon, port = where.rpartition(":")
    return host if colon and port.isdigit() and ":" not in host else where or "—"


def _row(n: int, case: CaseResult, whole: bool, views: Views) -> Row:
    failed = case.failed_step
    return Row(
        anchor=f"case-{n}",
        whole=whole,
        name=printable(case.name),
        status=case.status,
        target=printable(case.target),
        peer=printable(case.peer),
        duration=format_seconds(case.duration),
        # a failing step's own reason: the row names the step beside it
        reason=printable((failed.reason if failed else None) or why_failed(case) if case.status == FAILED
                         else case.reason),
        step=views.step(failed) if failed is not None else None,
        transcript=views.transcript(case) if case.status == FAILED and not whole else [],
    )


def _addresses(cases: Sequence[CaseResult]) -> list[tuple[str, int, int, int]]:
    counts: dict[str, Counter[str]] = {}
    for case in cases:
        counts.setdefault(_address(case), Counter())[case.status] += 1
    rows = [(printable(a), c[PASSED], c[FAILED], c[SKIPPED]) for a, c in counts.items()]
    return sorted(rows, key=lambda r: (-r[2], _natural(r[0])))  # most failures first


def digest(cases: Sequence[CaseResult], views: Views) -> Digest:
    """The compact view of many cases; views render a failing step and a transcript as the page shows them."""
    rows: dict[str, list[Row]] = {PASSED: [], FAILED: [], SKIPPED: []}
    whole: list[tuple[int, CaseResult]] = []
    by_reason: dict[tuple[Any, ...], list[Row]] = {}
    for n, case in enumerate(cases, 1):
        full = case.status == FAILED and len(whole) < FULL_FAILURES
        if full:
            whole.append((n, case))
        row = _row(n, case, full, views)
        rows.setdefault(case.status, []).append(row)
        if case.status == FAILED:
            step = row.step
            key = (step.index, step.action, step.ref, row.reason) if step else (None, None, None, row.reason)
            by_reason.setdefault(key, []).append(row)
    reasons = sorted(by_reason.items(), key=lambda kv: -len(kv[1]))
    addresses = _addresses(cases)
    return Digest(
        reasons=[(group[0], len(group), group[:EXAMPLES]) for _, group in reasons[:MAX_REASONS]],
        reasons_hidden=max(0, len(reasons) - MAX_REASONS),
        failed=rows[FAILED],
        passed=rows[PASSED],
        skipped=rows[SKIPPED],
        addresses=addresses[:MAX_ADDRESSES],
        addresses_hidden=max(0, len(addresses) - MAX_ADDRESSES),
        whole=whole,
    )


def _natural(text: str) -> list[Any]:
    """127.0.0.9 before 127.0.0.10: digits compared as numbers."""
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(text)]


def peers_line(found: Iterable[str]) -> tuple[list[str], int]:
    """The connected addresses the header names, and how many there are when it names only some."""
    peers = sorted(set(found), key=_natural)
    if len(peers) <= MAX_PEERS_NAMED:
        return list(peers), 0
    return list(peers[:3]), len(peers)


def lighten(plan: dict[str, Any]) -> dict[str, Any]:
    """A large plan's data as its page embeds it: every failing case whole, the first few passing ones whole
    (later reports read the banner and EHLO keywords from them), the others abridged to what a comparison
    reads (each step's verdict by its number)."""
    cases = plan.get("cases") or []
    if len(cases) <= FULL_CASES:
        return plan
    kept, abridged, out = 0, 0, []
    for case in cases:
        whole = case.get("status") == FAILED or bool(case.get("load"))
        if not whole and case.get("status") == PASSED and case.get("transcript") and kept < KEEP_PASSING_TRANSCRIPTS:
            kept, whole = kept + 1, True
        out.append(case if whole else _abridged(case))
        abridged += not whole
    return {**plan, "cases": out, "cases_abridged": abridged}


def _abridged(case: dict[str, Any]) -> dict[str, Any]:
    """A case as a later report compares it: by name, status and each step's verdict (and where it
    connected, and why a skipped case was skipped)."""
    reason = {"reason": case["reason"]} if case.get("reason") else {}
    return {"name": case.get("name"), "status": case.get("status"), "peer": case.get("peer"), **reason,
            "steps": [{"index": s.get("index"), "status": s.get("status")} for s in case.get("steps") or []]}


class Shedder:
    """The run's on_case hook for a large plan: once a case has ended and its JSON is written, what no
    report will show of it is let go, so a fleet's memory stays flat. The page of a large plan shows a
    passing or skipped case as a row and embeds its steps' verdicts; it shows a failing one whole (kept,
    with `report`), and embeds the first KEEP_PASSING_TRANSCRIPTS passing cases whole (kept too)."""

    def __init__(self, report: bool) -> None:
        self.report = report
        self.kept: dict[int, int] = {}  # id(plan) -> passing cases kept whole

    def __call__(self, plan: PlanResult, case: CaseResult) -> None:
        if len(plan.cases) <= FULL_CASES or case.load is not None:
            return
        if self.report and case.status == FAILED:
            return
        if self.report and case.status == PASSED and case.transcript:
            kept = self.kept.get(id(plan), 0)
            if kept < KEEP_PASSING_TRANSCRIPTS:
                self.kept[id(plan)] = kept + 1
                return
        case.transcript, case.attempts, case.tls = [], [], None
        case.steps = [StepResult(s.index, s.line, s.action, s.label, s.status, file=s.file) for s in case.steps]
