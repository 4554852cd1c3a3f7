"""Load-mode figures: many sessions of one case folded into counts, throughput and latency percentiles.

Memory stays flat however many sessions run: each session's result is folded in and dropped,
only its step latencies (8 bytes each) and a bounded number of failing examples are kept.
"""

from __future__ import annotations

from array import array
from collections import Counter
from datetime import datetime
from typing import Any

from runner.results import FAILED, CaseResult

__all__ = ["LoadStats", "percentile"]

KEEP_FAILURES = 5  # failing sessions kept whole, transcript and all
MAX_REASONS = 50  # distinct failure reasons listed; the rest are counted as "other"


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100) by nearest rank; values must be sorted."""
    if not values:
        return 0.0
    rank = max(1, -(-len(values) * p // 100))  # ceil(n * p / 100), at least 1
    return values[int(rank) - 1]


class LoadStats:
    def __init__(self) -> None:
        self.sessions = 0
        self.failed = 0
        self.durations = array("d")
        self.latencies: dict[int, array[float]] = {}
        self.labels: dict[int, str] = {}
        self.reasons: Counter[str] = Counter()
        self.examples: list[CaseResult] = []
        self.first: CaseResult | None = None
        self.processes = 1  # the processes whose sessions these are (--workers)

    def add(self, result: CaseResult) -> None:
        self.sessions += 1
        self.durations.append(result.duration)
        for step in result.steps:
            if step.reply is not None or step.status == FAILED:
                latencies = self.latencies.get(step.index)
                if latencies is None:
                    latencies = self.latencies[step.index] = array("d")
                    self.labels[step.index] = step.label
                latencies.append(step.duration)
        if result.status == FAILED:
            self.failed += 1
            self._count((result.failed_step.reason if result.failed_step else result.reason) or "unknown", 1)
            if len(self.examples) < KEEP_FAILURES:
                self.examples.append(result)
        if self.first is None:
            self.first = result

    def _count(self, reason: str, times: int) -> None:
        if reason in self.reasons or len(self.reasons) < MAX_REASONS:
            self.reasons[reason] += times
        else:
            self.reasons["other"] += times

    def merge(self, other: LoadStats) -> None:
        """Another process's figures for the same case added in exactly, as if its sessions had run here:
        counts added, every duration and step latency kept (percentiles are taken over them all, never
        averaged), failure reasons added under the same cap, failing sessions kept up to the same number.
        Past MAX_REASONS distinct reasons, each process has named its own first ones and counted the rest as
        "other": the totals still add up, a listed reason's count may then miss what another counted as other."""
        self.sessions += other.sessions
        self.failed += other.failed
        self.durations.extend(other.durations)
        for index, values in other.latencies.items():
            self.latencies.setdefault(index, array("d")).extend(values)
            self.labels.setdefault(index, other.labels[index])
        for reason, times in other.reasons.items():
            self._count(reason, times)
        self.examples.extend(other.examples[:max(0, KEEP_FAILURES - len(self.examples))])
        if self.first is None:
            self.first = other.first

    def summary(self, wall: float) -> dict[str, Any]:
        steps = []
        for index in sorted(self.latencies):
            values = sorted(self.latencies[index])
            steps.append({
                "index": index,
                "label": self.labels[index],
                "count": len(values),
                **{f"p{p}": round(percentile(values, p), 6) for p in (50, 90, 99)},
                "max": round(values[-1], 6),
            })
        durations = sorted(self.durations)
        return {
            "sessions": self.sessions,
            "passed": self.sessions - self.failed,
            "failed": self.failed,
            "processes": self.processes,
            "wall": round(wall, 6),
            "sessions_per_s": round(self.sessions / wall, 2) if wall > 0 else None,
            "session_p50": round(percentile(durations, 50), 6),
            "session_p99": round(percentile(durations, 99), 6),
            "steps": steps,
            "failures": dict(self.reasons.most_common()),
        }

    def result(self, first: CaseResult, name: str, wall: float, started: datetime,
               problems: list[str] | None = None) -> CaseResult:
        """The repeated case's result: `first` (its first session's, or one saying none ran) with the figures
        of all, failed when a session failed or a worker process went wrong (`problems`)."""
        first.load = self.summary(wall)
        first.started_at, first.duration = started, first.load["wall"]
        first.attempts = [e for e in self.examples if e is not first]
        if self.failed or problems:
            first.status = FAILED
            failed = [f"{self.failed} of {self.sessions} sessions failed"] if self.failed else []
            first.reason = "; ".join(failed + (problems or []))
        first.name = f"{name} ×{self.sessions}"
        return first
