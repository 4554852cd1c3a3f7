"""Runs every case of every plan on one event loop, at most `jobs` sessions at a time.

Results come back in plan order, whatever order cases finish in. A plan marked `sequential`
(or one whose cases have `when:` conditions) runs its cases in order, carrying what each learned
to the next. Ctrl-C stops the run cleanly: unfinished cases are marked interrupted and
everything gathered is still returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from runner import __version__
from runner.interpreter import Listener, run_case
from runner.plan.model import Case, Plan, Target
from runner.redact import Redactor
from runner.results import FAILED, SKIPPED, CaseResult, PlanResult, RunResult, StepResult
from runner.stats import LoadStats
from runner.template import ENVIRON, RenderError, evaluate

__all__ = ["RunOptions", "run_plans"]

DEFAULT_JOBS = 20


@dataclass
class RunOptions:
    host: str | None = None
    port: int | None = None
    timeout: float | None = None
    session_timeout: float | None = None
    jobs: int = DEFAULT_JOBS
    repeat: int = 1
    secrets: dict[str, str] = field(default_factory=dict)
    listener: Listener | None = None
    on_case: Callable[[PlanResult, CaseResult], None] | None = None


def target_for(plan: Plan, options: RunOptions) -> Target:
    changes: dict[str, Any] = {}
    if options.host:
        changes["host"] = options.host
    if options.port:
        changes["port"] = options.port
    if options.timeout:
        changes["timeout"] = options.timeout
    if options.session_timeout:
        changes["session_timeout"] = options.session_timeout
    return dataclasses.replace(plan.target, **changes)


def redactor_for(plan: Plan, options: RunOptions) -> Redactor:
    redactor = Redactor()
    for name in plan.secrets:
        redactor.add(str(plan.vars[name]))
    for value in options.secrets.values():
        redactor.add(value)
    return redactor


def _placeholder(case: Case, target: Target, status: str, reason: str) -> CaseResult:
    result = CaseResult(name=case.name, status=status, target=str(target), line=case.line, reason=reason)
    result.steps = [StepResult(s.index, s.line, s.action, s.name or s.action, status=SKIPPED, file=s.file)
                    for s in (*case.steps, *case.finally_steps)]
    return result


class _PlanRun:
    """One plan's cases on the shared loop: conditions, retries, repetitions."""

    def __init__(self, plan: Plan, options: RunOptions, gate: asyncio.Semaphore) -> None:
        self.plan, self.options, self.gate = plan, options, gate
        self.target = target_for(plan, options)
        self.redactor = redactor_for(plan, options)
        self.variables = dict(plan.vars)
        self.shared: dict[str, Any] | None = {} if plan.sequential else None
        self.result = PlanResult(plan.name, plan.file, plan.source, str(self.target))
        self.result.cases = [_placeholder(c, self.target, FAILED, "interrupted before the case finished")
                             for c in plan.cases]

    def tasks(self) -> list[asyncio.Future[Any]]:
        if self.plan.sequential:
            return [asyncio.ensure_future(self._in_order())]
        return [asyncio.ensure_future(self._one(i, case)) for i, case in enumerate(self.plan.cases)]

    async def _in_order(self) -> None:
        for i, case in enumerate(self.plan.cases):
            await self._one(i, case)

    async def _one(self, i: int, case: Case) -> None:
        if case.when is not None:
            skip = self._condition(case)
            if skip:
                self._done(i, _placeholder(case, self.target, SKIPPED, skip))
                return
        if self.options.repeat > 1:
            self._done(i, await self._load(case))
            return
        tries = 1 + (case.retry.times if case.retry else 0)
        earlier: list[CaseResult] = []
        for attempt in range(tries):
            if attempt:
                await asyncio.sleep(case.retry.delay if case.retry else 0)
            async with self.gate:
                result = await run_case(self.plan, case, self.target, self.variables, self.redactor,
                                        self.options.listener, self.shared)
            if result.status != FAILED or attempt == tries - 1:
                break
            earlier.append(result)
        result.attempts = earlier
        if earlier:
            result.notes.append(f"passed on try {len(earlier) + 1} of {tries}" if result.status != FAILED
                                else f"failed all {tries} tries")
        self._done(i, result)

    def _condition(self, case: Case) -> str | None:
        """None when the case should run, else why it is skipped."""
        shared = self.shared or {}
        scope = {"ehlo": {}, **self.variables, **shared, **case.vars, "env": ENVIRON}
        try:
            value = evaluate(case.when or "", scope)
        except RenderError as exc:
            return f"skipped: when {case.when!r} could not be evaluated: {exc}"
        return None if value else f"skipped: when {case.when!r} is false"

    async def _load(self, case: Case) -> CaseResult:
        """--repeat: the case `repeat` times, `jobs` at a time, folded into figures as they finish."""
        stats, left = LoadStats(), self.options.repeat
        t0 = time.monotonic()

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async with self.gate:
                    stats.add(await run_case(self.plan, case, self.target, self.variables, self.redactor))

        await asyncio.gather(*(worker() for _ in range(min(self.options.jobs, self.options.repeat))))
        result = stats.first if stats.first is not None else _placeholder(case, self.target, FAILED, "no session ran")
        result.load = stats.summary(time.monotonic() - t0)
        result.attempts = [e for e in stats.examples if e is not result]
        if stats.failed:
            result.status = FAILED
            result.reason = f"{stats.failed} of {stats.sessions} sessions failed"
        result.name = f"{case.name} ×{stats.sessions}"
        return result

    def _done(self, i: int, result: CaseResult) -> None:
        self.result.cases[i] = result
        if self.options.on_case is not None:
            self.options.on_case(self.result, result)


async def _run(plans: list[Plan], options: RunOptions, run: RunResult) -> None:
    gate = asyncio.Semaphore(max(1, options.jobs))
    runs = [_PlanRun(plan, options, gate) for plan in plans]
    run.plans.extend(r.result for r in runs)
    pending: set[asyncio.Future[Any]] = {task for r in runs for task in r.tasks()}

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or no signals
        loop.add_signal_handler(signal.SIGINT, stop.set)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        while pending and not stop.is_set():
            done, pending = await asyncio.wait(pending | {waiter}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(waiter)
            for task in done - {waiter}:
                if task.exception() is not None:  # a defect in smtprun itself: say so, keep the rest
                    run.errors.append(f"internal error: {type(task.exception()).__name__}: {task.exception()}")
    finally:
        waiter.cancel()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
    if stop.is_set():
        run.interrupted = True
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def run_plans(plans: list[Plan], options: RunOptions) -> RunResult:
    run = RunResult(version=__version__, started_at=datetime.now(timezone.utc))
    t0 = time.monotonic()
    asyncio.run(_run(plans, options, run))
    run.duration = time.monotonic() - t0
    return run
