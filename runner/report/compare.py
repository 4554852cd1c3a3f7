"""What changed between two runs of one plan against one target.

Pure functions over the data a report embeds ({"started_at": ..., "plan": PlanResult.to_dict()}),
so the comparison works on archived reports written by any earlier run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from runner.smtp.protocol import is_hello, keywords_from_lines

__all__ = [
    "CaseChange",
    "Changes",
    "StepChange",
    "banner",
    "compare_runs",
    "ehlo_keywords",
    "status_changes",
]

PASSED, FAILED = "passed", "failed"
_FLIPS = {(PASSED, FAILED), (FAILED, PASSED)}


@dataclass(frozen=True)
class StepChange:
    """A step that passed before and fails now, or the other way round (matched by position)."""

    index: int
    line: int | None
    file: str | None  # the included file the step is written in; None for the plan itself
    action: str
    label: str
    before: str
    after: str
    reason: str | None  # why it fails now, if it does


@dataclass(frozen=True)
class CaseChange:
    name: str
    before: str
    after: str
    steps: tuple[StepChange, ...] = ()


@dataclass(frozen=True)
class Changes:
    since: str  # started_at of the earlier run
    now_failing: tuple[CaseChange, ...] = ()  # passed before, fail now
    now_passing: tuple[CaseChange, ...] = ()  # failed before, pass now
    steps_moved: tuple[CaseChange, ...] = ()  # failing both times, but at a different step
    status_other: tuple[CaseChange, ...] = ()  # skipped now, or run again after being skipped
    cases_added: tuple[str, ...] = ()
    cases_removed: tuple[str, ...] = ()
    banner_before: str | None = None
    banner_after: str | None = None
    keywords_added: dict[str, str] = field(default_factory=dict)
    keywords_removed: dict[str, str] = field(default_factory=dict)
    keywords_changed: dict[str, tuple[str, str]] = field(default_factory=dict)  # params before, after

    @property
    def banner_changed(self) -> bool:
        return self.banner_before != self.banner_after

    @property
    def empty(self) -> bool:
        return not (
            self.now_failing
            or self.now_passing
            or self.steps_moved
            or self.status_other
            or self.cases_added
            or self.cases_removed
            or self.banner_changed
            or self.keywords_added
            or self.keywords_removed
            or self.keywords_changed
        )


def _reply_text(reply: dict[str, Any]) -> str:
    code = reply.get("code")
    lines = reply.get("lines") or [""]
    last = len(lines) - 1
    return "\n".join(f"{code}{'-' if i < last else ' '}{line}".rstrip() for i, line in enumerate(lines))


def _steps(plan: dict[str, Any]):
    for case in plan.get("cases") or []:
        yield from case.get("steps") or []


def banner(plan: dict[str, Any]) -> str | None:
    """The greeting: the reply of the plan's first `expect` step that got a 220 (RFC 5321 §4.3.1)."""
    for step in _steps(plan):
        reply = step.get("reply")
        if step.get("action") == "expect" and reply and reply.get("code") == 220:
            return _reply_text(reply)
    return None


def ehlo_keywords(plan: dict[str, Any]) -> dict[str, str]:
    """Keywords any accepted EHLO or LHLO advertised, read as Reply.keywords reads them.

    KEYWORD -> parameters; across several EHLOs (before and after STARTTLS) the first wins.
    """
    found: dict[str, str] = {}
    for step in _steps(plan):
        reply = step.get("reply")
        if reply and reply.get("code") == 250 and is_hello(step.get("sent")):
            for word, params in keywords_from_lines((reply.get("lines") or [])[1:]).items():
                found.setdefault(word, params)
    return found


def _step_flips(before: dict[str, Any], after: dict[str, Any]) -> tuple[StepChange, ...]:
    if before.get("load") or after.get("load"):
        return ()  # a load case's steps are one sample session's: whether it differs is chance
    old = {s.get("index"): s for s in before.get("steps") or []}
    flips = []
    for step in after.get("steps") or []:
        prev = old.get(step.get("index"))
        if prev is None or (prev.get("status"), step.get("status")) not in _FLIPS:
            continue
        said = step if "action" in step else prev  # a large plan's report abridges its passing steps to verdicts
        flips.append(
            StepChange(
                index=step.get("index"),
                line=said.get("line"),
                file=said.get("file"),
                action=said.get("action") or "",
                label=said.get("sent") or "",
                before=prev.get("status"),
                after=step.get("status"),
                reason=step.get("reason") if step.get("status") == FAILED else None,
            )
        )
    return tuple(flips)


def status_changes(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[tuple[CaseChange, ...], tuple[CaseChange, ...], tuple[CaseChange, ...], tuple[CaseChange, ...]]:
    """Cases now failing, now passing, failing both times at a different step, and otherwise changed
    (skipped now, or run again), matched by case name.

    Load cases are compared by status only.
    """
    old = {case_key(c.get("name")): c for c in before.get("cases") or []}
    failing, passing, moved, other = [], [], [], []
    for case in after.get("cases") or []:
        prev = old.get(case_key(case.get("name")))
        if prev is None:
            continue
        was, now = prev.get("status"), case.get("status")
        load = prev.get("load") or case.get("load")
        change = CaseChange(case.get("name"), was, now, () if load else _step_flips(prev, case))
        if (was, now) == (PASSED, FAILED):
            failing.append(change)
        elif (was, now) == (FAILED, PASSED):
            passing.append(change)
        elif was == now == FAILED and change.steps:
            moved.append(change)
        elif was != now:  # skipped now, or run again: a check that stopped running is a change too
            other.append(change)
    return tuple(failing), tuple(passing), tuple(moved), tuple(other)


def case_key(name: Any) -> Any:
    """A case's name without the load-mode count (`banner ×5000`), so runs of either kind compare."""
    return re.sub(r" ×\d+$", "", name) if isinstance(name, str) else name


def compare_runs(previous: dict[str, Any], current: dict[str, Any]) -> Changes:
    """Compare two reports' embedded data of the same plan against the same target."""
    before, after = previous.get("plan") or {}, current.get("plan") or {}
    failing, passing, moved, other = status_changes(before, after)
    old_names = [c.get("name") for c in before.get("cases") or []]
    new_names = [c.get("name") for c in after.get("cases") or []]
    old_set, new_set = {case_key(n) for n in old_names}, {case_key(n) for n in new_names}
    old_kw, new_kw = ehlo_keywords(before), ehlo_keywords(after)
    return Changes(
        since=previous.get("started_at") or "",
        now_failing=failing,
        now_passing=passing,
        steps_moved=moved,
        status_other=other,
        cases_added=tuple(n for n in new_names if case_key(n) not in old_set),
        cases_removed=tuple(n for n in old_names if case_key(n) not in new_set),
        banner_before=banner(before),
        banner_after=banner(after),
        keywords_added={k: v for k, v in new_kw.items() if k not in old_kw},
        keywords_removed={k: v for k, v in old_kw.items() if k not in new_kw},
        keywords_changed={k: (old_kw[k], v) for k, v in new_kw.items() if k in old_kw and old_kw[k] != v},
    )
