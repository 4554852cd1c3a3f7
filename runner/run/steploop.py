"""The step loop of a case: its steps run one after another, each one's verdict recorded in its result, the
case cut short (and why) when one fails and the plan does not say to go on. The running case itself, its
connection and what it knows, is runner.run.case's."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from runner.errors import StepFailed
from runner.plan.types import Step
from runner.redact import Redactor
from runner.results import FAILED, PASSED, SKIPPED, CaseResult, StepResult
from runner.run.steprender import StepRenderer
from runner.smtp import expect as expectations

__all__ = ["RunningCase", "cut", "not_run", "run_list"]


class RunningCase(Protocol):
    """What the loop needs of the case it runs (runner.run.case.RunningCase)."""

    result: CaseResult
    running: StepResult | None  # the step in progress, for the session deadline
    step: Step | None
    stop: asyncio.Event | None  # set on Ctrl-C
    quitting: bool  # the QUIT after a failure is under way
    t0: float
    redactor: Redactor
    renderer: StepRenderer

    def truthy(self, expression: str, out: StepResult) -> bool: ...

    async def run_step(self, step: Step, out: StepResult) -> None: ...

    def note(self, text: str) -> None: ...


def not_run(step: Step) -> StepResult:
    """A step's result before it runs (and if it never does): skipped, labelled by what it would do."""
    return StepResult(step.index, step.line, step.action, step.shown, status=SKIPPED, file=step.file)


async def run_list(session: RunningCase, steps: tuple[Step, ...], outs: list[StepResult],
                    go_on: bool) -> bool:
    """Run steps in order; False when one failed and the rest were left (not run)."""
    result = session.result
    for step, out in zip(steps, outs, strict=True):
        if session.stop is not None and session.stop.is_set():  # Ctrl-C, even if a cancel went astray
            cut(session, "interrupted")
            return False
        session.step = step
        try:
            if step.when is not None and not session.truthy(step.when, out):
                continue
        except StepFailed as exc:
            out.reason = session.redactor.text(exc.reason)
            out.status = result.status = FAILED
            result.reason = result.reason or f"step {step.index} ({step.file}:{step.line}): {out.reason}"
            if go_on or step.continue_on_failure:
                continue
            return False
        if not await _one(session, step, out, go_on):
            return False
    return True


async def _one(session: RunningCase, step: Step, out: StepResult, go_on: bool) -> bool:
    """Run one step; False when it failed and the case goes no further."""
    result = session.result
    out.status, out.started = PASSED, time.monotonic() - session.t0
    session.running = out  # left set if the session deadline cancels the step
    try:
        await session.run_step(step, out)
        session.running = None
    except Exception as exc:  # a defect in smtprun: a verdict on this step, the transcript kept
        session.running = None
        if not isinstance(exc, StepFailed):
            exc = StepFailed(f"internal error: {type(exc).__name__}: {exc}")
        out.status, out.reason = FAILED, session.redactor.text(exc.reason)
        out.reply = out.reply or exc.reply  # type: ignore[assignment]
        if out.expected is None and step.expect is not None:
            out.expected = expectations.describe(step.expect, lambda t: session.renderer.text(session.step, t))
        if result.status != FAILED:
            result.status = FAILED
            result.reason = f"step {step.index} ({step.file}:{step.line}): {out.reason}"
        if not (go_on or step.continue_on_failure):
            return False
    finally:
        out.duration = time.monotonic() - session.t0 - out.started
        if out.reply is not None and session.redactor:
            out.reply = session.redactor.reply(out.reply)
    return True


def cut(session: RunningCase, reason: str) -> None:
    if session.quitting:  # the verdict was in before the QUIT that followed it: keep its reason
        session.note(f"QUIT: {reason}")
        return
    session.result.status, session.result.reason = FAILED, reason
    if session.running is not None:
        session.running.status, session.running.reason = FAILED, reason
