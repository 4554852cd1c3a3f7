"""The result model every reporter reads: run -> plans -> cases -> steps, plus each case's transcript.

Reporters (console, HTML, JSON, JUnit) only read this model; `to_dict()` is the JSON shape and the
form archived reports are compared by. Secrets are redacted before anything reaches this model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from runner.smtp.protocol import Reply
from runner.text import CONTROLS, printable

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"

SEND, RECV, INFO = "C", "S", "*"  # transcript directions: client, server, smtprun's own note


def show_bytes(data: bytes, backslash: bool = True) -> str:
    """Bytes as readable text: UTF-8 shown as is, control and invalid bytes escaped (\\r, \\x00).

    With backslash, a backslash is doubled so the escapes stay unambiguous (reports); a terminal,
    for people, shows it as it is.
    """
    return printable(data, CONTROLS, backslash=backslash)


def count_cases(cases: Iterable[CaseResult]) -> dict[str, int]:
    """How many cases passed, failed and were skipped (the three always present)."""
    counts = {PASSED: 0, FAILED: 0, SKIPPED: 0}
    for case in cases:
        counts[case.status] = counts.get(case.status, 0) + 1
    return counts


def utc_iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class Event:
    """One transcript entry: who spoke, when (seconds since the case began), the exact bytes."""

    t: float
    direction: str
    data: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"t": round(self.t, 6), "dir": self.direction, "data": show_bytes(self.data)}


def reply_dict(reply: Reply | None) -> dict[str, Any] | None:
    if reply is None:
        return None
    return {"code": reply.code, "lines": list(reply.lines), "enhanced": reply.enhanced}


@dataclass
class StepResult:
    index: int  # 1-based position in the case
    line: int | None  # the step's line in the plan file
    action: str  # send, raw, data, expect, sleep, close, starttls, auth, ...
    label: str  # what was done, rendered and redacted, e.g. "EHLO test.com"
    status: str = PASSED
    expected: str | None = None  # the expectation in words
    reply: Reply | None = None
    reason: str | None = None  # why it failed
    started: float = 0.0  # seconds since the case began
    duration: float = 0.0
    captures: dict[str, str] = field(default_factory=dict)
    file: str | None = None  # the file the step is written in, when not the plan itself (an include)
    details: dict[str, Any] | None = None  # expect_delivery/expect_dsn: the mailbox, the wait, what was found
    verdict: str | None = None  # a finding in words, for steps that judge one (smuggle: "vulnerable: ...")

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "file": self.file,
            "line": self.line,
            "action": self.action,
            "sent": self.label,
            "status": self.status,
            "expected": self.expected,
            "reply": reply_dict(self.reply),
            "reason": self.reason,
            "started": round(self.started, 6),
            "duration": round(self.duration, 6),
            "captures": dict(self.captures),
            **({"details": self.details} if self.details is not None else {}),
            "verdict": self.verdict,
        }


@dataclass
class CaseResult:
    name: str
    status: str = PASSED
    steps: list[StepResult] = field(default_factory=list)
    transcript: list[Event] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    duration: float = 0.0
    target: str = ""  # host:port as the plan gave it
    peer: str | None = None  # the address actually connected to
    source: str | None = None  # the local address connected from, when target.source / --source chose one
    reason: str | None = None  # the first failure, in one line
    line: int | None = None  # the case's line in the plan file
    tls: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    attempts: list[CaseResult] = field(default_factory=list)  # earlier failed tries (retry), or failing samples (load)
    load: dict[str, Any] | None = None  # with --repeat: sessions, throughput, latency percentiles, failures
    position: int | None = None  # its place in the whole plan's list of cases (--shard runs a share of them)
    retryable: bool = True  # False: trying again cannot change the verdict (the plan is wrong, not the server)

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if s.status == FAILED), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "line": self.line,
            "target": self.target,
            "peer": self.peer,
            "source": self.source,
            "started_at": utc_iso(self.started_at),
            "duration": round(self.duration, 6),
            "reason": self.reason,
            "tls": self.tls,
            "notes": list(self.notes),
            "steps": [s.to_dict() for s in self.steps],
            "transcript": [e.to_dict() for e in self.transcript],
            "attempts": [a.to_dict() for a in self.attempts],
            "load": self.load,
            "position": self.position,
        }


@dataclass
class PlanResult:
    name: str
    file: str
    source: str  # the plan file's text, embedded so a report explains itself
    target: str
    cases: list[CaseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. what an MX lookup found
    dns_seconds: float | None = None  # how long the plan's MX lookup took, when it made one

    @property
    def status(self) -> str:
        return FAILED if any(c.status == FAILED for c in self.cases) else PASSED

    @property
    def duration(self) -> float:
        """Wall time from the first case's start to the last one's end: cases run concurrently, so not
        their sum. Cases that never started (skipped, interrupted before they began) take no part."""
        ran = [c for c in self.cases if c.duration or c.transcript]
        if not ran:
            return 0.0
        start = min(c.started_at for c in ran)
        end = max(c.started_at + timedelta(seconds=c.duration) for c in ran)
        return (end - start).total_seconds()

    def counts(self) -> dict[str, int]:
        return count_cases(self.cases)

    def to_dict(self, cases: bool = True) -> dict[str, Any]:
        """The plan as JSON; without `cases`, its own keys with an empty list of cases (a writer that
        puts the cases on disk as they come fills the list in)."""
        return {
            "name": self.name,
            "file": self.file,
            "target": self.target,
            "status": self.status,
            "duration": round(self.duration, 6),
            "source": self.source,
            "notes": list(self.notes),
            "dns_seconds": None if self.dns_seconds is None else round(self.dns_seconds, 6),
            "cases": [c.to_dict() for c in self.cases] if cases else [],
        }


@dataclass
class RunResult:
    version: str
    started_at: datetime
    plans: list[PlanResult] = field(default_factory=list)
    duration: float = 0.0
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)  # defects in smtprun itself, never silently dropped
    shard: tuple[int, int] | None = None  # --shard K/N: this run holds share K of N


    def counts(self) -> dict[str, int]:
        return count_cases(case for plan in self.plans for case in plan.cases)

    @property
    def status(self) -> str:
        return FAILED if self.errors or any(p.status == FAILED for p in self.plans) else PASSED

    def to_dict(self, cases: bool = True) -> dict[str, Any]:
        return {
            "smtprun": self.version,
            "started_at": utc_iso(self.started_at),
            "duration": round(self.duration, 6),
            "interrupted": self.interrupted,
            "errors": list(self.errors),
            "status": self.status,
            "shard": None if self.shard is None else {"index": self.shard[0], "total": self.shard[1]},
            "counts": self.counts(),
            "plans": [p.to_dict(cases) for p in self.plans],
        }
