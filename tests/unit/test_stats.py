"""runner/stats.py: load-mode figures, and LoadStats.merge, which joins the figures of worker processes
(--workers) into what one process running every session would have reported."""

from __future__ import annotations

import random

from runner.results import FAILED, CaseResult, StepResult
from runner.stats import KEEP_FAILURES, MAX_REASONS, LoadStats


def session(rng: random.Random, n: int, reasons: int = MAX_REASONS) -> CaseResult:
    """A session of three steps with random durations; every seventh fails at its second step, for one of
    `reasons` distinct reasons."""
    failing = n % 7 == 0
    steps = [StepResult(1, 1, "expect", "banner", duration=rng.random()),
             StepResult(2, 2, "send", "EHLO a.test", duration=rng.random(),
                        status=FAILED if failing else "passed",
                        reason=f"reason {n // 7 % reasons}" if failing else None)]
    if not failing:
        steps.append(StepResult(3, 3, "send", "QUIT", duration=rng.random()))
    for step in steps:
        step.reply = None if step.status == FAILED else object()  # type: ignore[assignment]
    return CaseResult(f"s{n}", status=FAILED if failing else "passed", steps=steps, duration=rng.random())


def test_merged_figures_are_those_of_one_process_running_every_session():
    rng = random.Random(7)
    sessions = [session(rng, n) for n in range(3000)]
    one = LoadStats()
    for s in sessions:
        one.add(s)
    first, second = LoadStats(), LoadStats()
    for s in sessions[:1700]:  # shares need not be even
        first.add(s)
    for s in sessions[1700:]:
        second.add(s)
    merged = LoadStats()
    merged.merge(first)
    merged.merge(second)
    got, want = merged.summary(2.0), one.summary(2.0)
    # the percentiles of every step and session are taken over all the latencies, not averaged
    assert {k: v for k, v in got.items() if k != "failures"} == {k: v for k, v in want.items() if k != "failures"}
    assert got["sessions"] == 3000 and got["failed"] == 429 and [s["count"] for s in got["steps"]] == [3000, 3000, 2571]
    assert got["failures"] == want["failures"] and len(got["failures"]) == MAX_REASONS
    # failing sessions kept whole, no more than one process keeps; the first session is the first share's
    assert len(merged.examples) == KEEP_FAILURES and merged.first is sessions[0]


def test_a_worker_that_ran_nothing_changes_nothing():
    rng = random.Random(1)
    stats = LoadStats()
    stats.add(session(rng, 1))
    before = stats.summary(1.0)
    stats.merge(LoadStats())
    assert stats.summary(1.0) == before


def test_beyond_the_listed_reasons_the_counts_still_add_up():
    rng = random.Random(3)
    shares = [LoadStats(), LoadStats()]
    for n in range(3000):
        shares[n % 2].add(session(rng, n, reasons=MAX_REASONS + 30))
    merged = LoadStats()
    for share in shares:
        merged.merge(share)
    failures = merged.summary(1.0)["failures"]
    # each process lists its own first reasons by name and counts the rest as "other": the list keeps its cap
    assert len(failures) == MAX_REASONS + 1 and failures["other"] > 0 and sum(failures.values()) == 429
