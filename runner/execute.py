"""Runs every case of every plan on one event loop, at most `jobs` sessions at a time.

Results come back in plan order, whatever order cases finish in. Ctrl-C stops the run cleanly:
unfinished cases are marked interrupted and everything gathered is still returned.
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

__all__ = ["RunOptions", "run_plans"]

DEFAULT_JOBS = 20


@dataclass
class RunOptions:
    host: str | None = None
    port: int | None = None
    timeout: float | None = None
    session_timeout: float | None = None
    jobs: int = DEFAULT_JOBS
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


def _interrupted(case: Case, target: Target) -> CaseResult:
    result = CaseResult(name=case.name, status=FAILED, target=str(target), line=case.line,
                        reason="interrupted before the case finished")
    result.steps = [StepResult(s.index, s.line, s.action, s.name or s.action, status=SKIPPED) for s in case.steps]
    return result


async def _run(plans: list[Plan], options: RunOptions, run: RunResult) -> None:
    gate = asyncio.Semaphore(max(1, options.jobs))
    jobs: list[tuple[PlanResult, int, asyncio.Task[CaseResult]]] = []

    async def one(plan: Plan, plan_result: PlanResult, case: Case, target: Target, variables: dict[str, Any],
                  redactor: Redactor) -> CaseResult:
        async with gate:
            result = await run_case(plan, case, target, variables, redactor, options.listener)
        if options.on_case is not None:
            options.on_case(plan_result, result)
        return result

    for plan in plans:
        target = target_for(plan, options)
        plan_result = PlanResult(plan.name, plan.file, plan.source, str(target))
        plan_result.cases = [_interrupted(c, target) for c in plan.cases]
        run.plans.append(plan_result)
        variables = dict(plan.vars)
        redactor = redactor_for(plan, options)
        for i, case in enumerate(plan.cases):
            task = asyncio.ensure_future(one(plan, plan_result, case, target, variables, redactor))
            jobs.append((plan_result, i, task))

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or no signals
        loop.add_signal_handler(signal.SIGINT, stop.set)
    waiter = asyncio.ensure_future(stop.wait())
    pending = {task for _, _, task in jobs}
    try:
        while pending and not stop.is_set():
            _done, pending = await asyncio.wait(pending | {waiter}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(waiter)
    finally:
        waiter.cancel()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
    if stop.is_set():
        run.interrupted = True
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    for plan_result, i, task in jobs:
        if not task.done() or task.cancelled():
            continue
        error = task.exception()
        if error is None:
            plan_result.cases[i] = task.result()
        else:  # a defect in smtprun itself: still a verdict, never a lost case
            plan_result.cases[i].reason = f"internal error: {type(error).__name__}: {error}"


def run_plans(plans: list[Plan], options: RunOptions) -> RunResult:
    run = RunResult(version=__version__, started_at=datetime.now(timezone.utc))
    t0 = time.monotonic()
    asyncio.run(_run(plans, options, run))
    run.duration = time.monotonic() - t0
    return run
