"""Why a probe failed, as values a Prometheus label can hold: the failing step's index and a reason class.

The classes are a closed set (REASONS), read from the result model and the plan — the step's action,
the reply it got against the code it expected, what the transcript holds — never from the words of a
reason, which come from the server and would make every failure its own series.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.plan import Plan
from runner.plan.actions import KINDS
from runner.plan.types import Case, Step
from runner.results import FAILED, INFO, RECV, CaseResult, RunResult, StepResult
from runner.smtp import expect

__all__ = ["REASONS", "Failure", "failures"]

REASONS = ("connect", "dns", "timeout", "closed", "protocol", "tls", "auth", "reply_code", "reply_text",
           "delivery", "smuggling", "error")
SERVER_CLOSED = b"server closed the connection"  # the transcript's note when the server hangs up (runner.run.wire)
TIMED_OUT = 0.9  # a step that waited this share of its timeout and got nothing timed out
_ANY_REPLY = ("delivery", "dns", "tls")  # topics whose failure is that, whatever the reply (runner.plan.actions)


@dataclass(frozen=True)
class Failure:
    case: str  # "" when no case ran at all
    step: int  # 1-based; 0 before the first step (looking up the MX hosts, connecting)
    reason: str  # one of REASONS


class _Written:
    """The plan's cases and steps as written, found again from their results by place in the file."""

    def __init__(self, plan: Plan | None, timeout: float | None) -> None:
        cases = plan.cases if plan is not None else ()
        self.cases: dict[int, Case] = {c.line: c for c in cases}
        self.steps: dict[tuple[str | None, int], Step] = {
            (s.file, s.line): s for c in cases for s in (*c.steps, *c.finally_steps)}
        self.mx = plan is not None and plan.target.mx is not None and plan.target.host is None
        self.timeout = timeout or (plan.target.timeout if plan is not None else None)

    def step(self, result: StepResult) -> Step | None:
        return self.steps.get((result.file, result.line))

    def patience(self, case: CaseResult, result: StepResult) -> float | None:
        """Seconds the step waited for its reply: its own timeout, its case's, or the target's."""
        step, written = self.step(result), self.cases.get(case.line or -1)
        return (step and step.timeout) or (written and written.timeout) or self.timeout


def failures(run: RunResult | None, plan: Plan | None = None, timeout: float | None = None) -> list[Failure]:
    """One Failure per failed case; `run` None when the probe's time ran out before the plan began.
    `timeout` is the reply timeout the run used when it overrode the plan's target."""
    if run is None:
        return [Failure("", 0, "timeout")]
    written = _Written(plan, timeout)
    found = [_case(case, run.interrupted, written) for p in run.plans for case in p.cases if case.status == FAILED]
    if run.errors and not found:  # a defect in smtprun, not the server's doing
        found.append(Failure("", 0, "error"))
    if run.interrupted and not found:  # the probe's time ran out before any case could fail
        found.append(Failure("", 0, "timeout"))
    return found


def _case(case: CaseResult, interrupted: bool, written: _Written) -> Failure:
    step = case.failed_step
    if step is None:  # no step ran: the session never began
        return Failure(case.name, 0, _before_steps(case, interrupted, written))
    return Failure(case.name, step.index, _step(case, step, interrupted, written))


def _before_steps(case: CaseResult, interrupted: bool, written: _Written) -> str:
    if case.peer is not None:
        return "timeout" if interrupted else "error"
    if not case.transcript:  # no connection was tried: the route (MX lookup) failed, or time ran out first
        return "timeout" if interrupted else "dns" if written.mx else "connect"
    return "connect"


def _step(case: CaseResult, step: StepResult, interrupted: bool, written: _Written) -> str:
    topic = kind.topic if (kind := KINDS.get(step.action)) is not None else ""
    if topic in _ANY_REPLY or (topic == "smuggling" and step.verdict):
        return topic
    if step.reply is not None:
        return "auth" if topic == "auth" else _judged(step, written.step(step))
    return _unanswered(case, step, interrupted, written.patience(case, step))


def _judged(result: StepResult, step: Step | None) -> str:
    """A reply came and did not do: its code (or closing instead) was wrong, or the rest of it."""
    spec = step.expect if step is not None else None
    if spec is None:  # the action's own expectation (pipeline items, a body refused while sent)
        return "reply_code"
    codes = spec.get("code") if isinstance(spec, dict) else spec
    assert result.reply is not None
    return "reply_code" if expect.check(codes, result.reply) else "reply_text"


def _unanswered(case: CaseResult, step: StepResult, interrupted: bool, patience: float | None) -> str:
    """No reply: the server hung up, sent what is not SMTP, or said nothing in time."""
    since = [e for e in case.transcript if e.t >= step.started]
    if any(e.direction == INFO and e.data == SERVER_CLOSED for e in since):
        return "closed"
    if any(e.direction == RECV for e in since):
        return "protocol"
    if interrupted or (patience is not None and step.duration >= TIMED_OUT * patience):
        return "timeout"
    return "closed"  # reset, or the connection failed while the step was sending
