"""Runs one case: its steps, in order, over one connection, judging every reply.

A step sends what the plan says (rendered, byte for byte), then, when it expects something,
reads one reply before its deadline and judges it. The first failed step ends the case (unless
the plan says to go on); the steps after it are reported as not run, and `finally:` steps still
run. Nothing here waits without a deadline.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from runner import limits
from runner.errors import StepFailed
from runner.net.address import check_host, parse_source
from runner.net.transport import Connector, open_connection
from runner.plan.actions import named
from runner.plan.scope import Scope
from runner.plan.types import Case, Plan, Step, Target
from runner.results import FAILED, CaseResult, StepResult
from runner.run.budget import RenderBudget
from runner.run.connect import Hop
from runner.run.connect import connect as connect_case
from runner.run.steploop import cut, not_run, run_list
from runner.run.steprender import StepRenderer, preview_labels
from runner.run.steps import ACTIONS
from runner.run.transcript import Listener, Transcript
from runner.run.wire import Wire
from runner.smtp import expect as expectations
from runner.smtp.protocol import Reply
from runner.template import RenderError, truth

__all__ = ["CaseRun", "Hop", "Listener", "RunningCase", "not_run", "run_case"]

MAIL_ACTIONS = named("mailbox")  # the closed-loop steps: a case without them loads nothing of runner.mail
QUIT_TIMEOUT = 2.0  # seconds for the 221 to the QUIT after a failure; Exim takes 0.2 s (RFC 5321 sets none)


@dataclass(frozen=True)
class CaseRun:
    """One run of one case, as the scheduler asks for it.

    `scope` is the plan's; the case's own is derived from it. With `learn` (a sequential plan), what the case
    learned (captures, the last EHLO keywords, its secrets) goes back into it for later cases and their
    `when:` conditions. `connect` opens the connection (by default over the network:
    runner.net.transport.open_connection); `route` is the MX hosts to try in order, `stop` is set on Ctrl-C,
    `budget` bounds the rendering of large bodies across the run."""

    plan: Plan
    case: Case
    target: Target
    scope: Scope
    listener: Listener | None = None
    learn: bool = False
    route: tuple[Hop, ...] | None = None
    stop: asyncio.Event | None = None
    connect: Connector | None = None
    budget: RenderBudget | None = None


class RunningCase(Wire):
    """What one case knows while it runs: its connection (a Wire), its variables, the step in progress."""

    def __init__(self, job: CaseRun, scope: Scope) -> None:
        plan, case, target = job.plan, job.case, job.target
        self.plan, self.case, self.target = plan, case, target
        self.redactor = scope.redactor  # this case's own: secrets it learns stay with it
        self.renderer = StepRenderer(scope, job.budget)  # the budget: the run's, shared by every case
        self.t0 = time.monotonic()
        result = CaseResult(name=case.name, target=str(target), line=case.line)
        self.vars = scope.values  # captures and the EHLO keywords are set here, in the case's scope
        keywords = self.vars.get("ehlo")  # what the plan's earlier cases learned
        super().__init__(result, Transcript(case.name, result.transcript, self.redactor, job.listener, self.t0),
                         keywords if isinstance(keywords, dict) else {}, target.strict_replies)
        self.captures: dict[str, str] = {}
        self.running: StepResult | None = None  # the step in progress, for the session deadline
        self.stop = job.stop  # set on Ctrl-C
        self.route, self.connector = job.route, job.connect or open_connection
        self.server_host = target.host or ""  # the name TLS checks and DNS checks use
        self.step: Step | None = None
        self.quit_reply: Reply | None = None  # the server's answer to the QUIT sent after a failure
        self.quitting = False  # that QUIT is under way
        self.started_at = time.time()
        self.accepted_at: float | None = None  # the last 250 to a message's data (for `latency:`)
        self.wants_message_id = any(s.action in MAIL_ACTIONS for s in (*case.steps, *case.finally_steps))
        self.mail_listeners: Any = None  # runner.mail.listen.Listeners, started by a case with mail steps

    def accepted(self, reply: Reply | None) -> None:
        if reply is not None and reply.code == 250:
            self.accepted_at = time.time()

    @property
    def message_id(self) -> str:
        return str(self.vars.get("message_id", ""))

    @property
    def delivered_signatures(self) -> tuple[tuple[str, str], ...]:
        return tuple((str(sig.get("d", "")), str(sig.get("s", ""))) for out in self.result.steps
                     if out.action == "expect_delivery" and out.details
                     for sig in (out.details.get("dkim") or {}).get("signatures", ()))

    @property
    def nameservers(self) -> tuple[tuple[str, int], ...]:
        from runner.net.dns import parse_nameserver

        return tuple(parse_nameserver(n) for n in self.target.nameservers)

    # -- connecting -------------------------------------------------------------------------
    def timeout(self, step: Step) -> float:
        """Seconds the step may wait for each reply: its own timeout, else its case's, else the target's."""
        return step.timeout or self.case.timeout or self.target.timeout

    def port(self) -> int:
        port = self.target.port
        if isinstance(port, int):
            return port
        text = self.text(port)
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise StepFailed(f"target port {port!r} renders to {text!r}, not a TCP port")
        return int(text)

    def host(self) -> str:
        """The target host, rendered, and a name the resolver can be asked for (or an IP address)."""
        try:
            return check_host(self.text(self.target.host or ""))
        except ValueError as exc:
            raise StepFailed(str(exc)) from None

    def source(self) -> str | None:
        """The target's source address, rendered: an IP address to connect from, or None."""
        if self.target.source is None:
            return None
        try:
            return parse_source(self.text(self.target.source))
        except ValueError as exc:
            raise StepFailed(f"target.source: {exc}") from None

    async def connect(self) -> None:
        await connect_case(self)

    async def start_tls(self, context: ssl.SSLContext, server_name: str, verify: bool,
                        deadline: float) -> dict[str, Any]:
        facts = await super().start_tls(context, server_name, verify, deadline)
        self.vars["ehlo"] = self.smtp.keywords  # none now: RFC 3207 §4.2, what was learned before TLS is void
        return facts

    # -- steps ------------------------------------------------------------------------------
    def scope(self) -> Mapping[str, Any]:
        """Names the current step's templates see (runner.run.steprender)."""
        return self.renderer.names(self.step)

    def text(self, value: str) -> str:
        try:
            return self.renderer.text(self.step, value)
        except RenderError as exc:
            raise StepFailed(str(exc)) from None

    def truthy(self, expression: str, out: StepResult) -> bool:
        """A `when:` condition; a false one leaves the step skipped, saying why."""
        try:
            value = self.renderer.evaluate(self.step, expression)
        except RenderError as exc:
            raise StepFailed(f"when: {exc}") from None
        if not truth(value):
            out.reason = f"skipped: when {expression!r} is false"
        return truth(value)

    async def run_step(self, step: Step, out: StepResult) -> None:
        self.step = step
        self.cut_short = False
        self.patience = self.timeout(step)  # for "no reply within 30s"
        deadline = time.monotonic() + self.patience
        try:
            if step.wire_template is None:  # nothing to render ahead
                await self._act(step, out, deadline)
                return
            async with self.renderer.body(step, deadline):  # a large body is alive only while its step runs
                await self._act(step, out, deadline)
        except RenderError as exc:
            raise StepFailed(str(exc)) from None

    async def _act(self, step: Step, out: StepResult, deadline: float) -> None:
        action = ACTIONS.get(step.action)
        if action is not None:
            if await action(self, step, out, deadline):
                return  # the action judged its own replies
        else:
            out.label = "read a reply"
        if step.reads_reply:
            reply = await self.judge(step, out, deadline, default=None)
            if step.action in _BODY_ACTIONS:
                self.accepted(reply)
        elif self.cut_short:  # the server refused what was being sent: that is this step's outcome
            reply = out.reply = await self.reply(deadline)
            raise StepFailed(f"the server stopped taking the data and answered {reply.summary()}", reply)

    async def judge(self, step: Step, out: StepResult, deadline: float, default: Any) -> Reply | None:
        spec = step.expect if step.expect is not None else default
        if spec is not None:
            fixed = step.expected if spec is step.expect else None  # worked out once, unless templated
            out.expected = fixed or expectations.describe(spec, lambda text: self.renderer.text(step, text))
        if spec == expectations.CLOSED:
            await self.wait_closed(deadline)
            return None
        reply = await self.reply(deadline)
        out.reply = reply
        self.check(spec, reply)
        self.capture(step, reply, out)
        if self.smtp.learn(out.label, reply):
            self.vars["ehlo"] = self.smtp.keywords
        return reply

    def check(self, spec: Any, reply: Reply, context: str = "") -> None:
        """Judge a reply against an expectation; every step kind comes through here."""
        try:
            why = expectations.check(spec, reply, lambda text: self.renderer.text(self.step, text))
        except RenderError as exc:
            why = str(exc)
        if why:
            raise StepFailed(f"{context}{why}", reply)

    def capture(self, step: Step, reply: Reply, out: StepResult) -> None:
        for name, pattern in step.capture.items():
            rx = self.text(pattern)
            try:
                found = limits.search(rx, reply.text)
            except re.error as exc:
                raise StepFailed(f"capture {name}: bad regex /{rx}/: {exc}", reply) from None
            except limits.RegexTimeout as exc:
                raise StepFailed(f"capture {name}: {exc}", reply) from None
            if not found:
                raise StepFailed(f"capture {name}: /{rx}/ not found in {reply.summary()}", reply)
            value = (found.group(1) if found.re.groups else found.group(0)) or ""  # a group that took no part
            self.vars[name] = self.captures[name] = value
            out.captures[name] = self.redactor.text(value or "")
            self.note(f"captured {name} = {out.captures[name]!r}")


_BODY_ACTIONS = named("ends_data")  # (bdat judges its own replies: steps.py)


async def _start_listeners(session: RunningCase, every: tuple[Step, ...]) -> None:
    """The listen:// mailboxes of a case's mail steps that can start before it connects, started; StepFailed
    when one cannot. Only a case with mail steps comes here, and only it loads runner.mail."""
    from runner.mail.listen import ListenError, Listeners
    from runner.run.mailsteps import NotStarted, early_mailboxes

    session.mail_listeners = Listeners()
    try:
        await session.mail_listeners.start(early_mailboxes(every, session.renderer.text))
    except NotStarted as exc:  # the step whose mailbox it is says why, too; no retry: it would say the same
        out = session.result.steps[next(i for i, s in enumerate(every) if s is exc.step)]
        out.status, out.reason, session.result.retryable = FAILED, session.redactor.text(exc.why), False
        raise
    except ListenError as exc:
        raise StepFailed(str(exc)) from exc


async def _run_steps(session: RunningCase) -> None:
    result, case = session.result, session.case
    result.steps = [not_run(s) for s in (*case.steps, *case.finally_steps)]
    main, final = result.steps[: len(case.steps)], result.steps[len(case.steps):]
    every = (*case.steps, *case.finally_steps)
    try:
        if session.wants_message_id:
            await _start_listeners(session, every)  # before anything is sent
        await session.connect()
    except StepFailed as exc:  # no step ran: the connection (or a listener) is what failed
        result.status, result.reason = FAILED, session.redactor.text(str(exc))
        return
    await run_list(session, case.steps, main, case.continue_on_failure)
    if case.finally_steps:
        steps, outs = case.finally_steps, final
        if session.over:  # after a 221 or a close: steps on it could only fail (RFC 5321 §4.1.1.10) ...
            for step, out in zip(steps, outs, strict=True):
                if step.action not in MAIL_ACTIONS:
                    out.reason = f"not run: {session.over}"
            kept = [i for i, step in enumerate(steps) if step.action in MAIL_ACTIONS]  # ... mailbox steps need none
            steps, outs = tuple(steps[i] for i in kept), [outs[i] for i in kept]
        await run_list(session, steps, outs, case.continue_on_failure)
    quit_on_failure = case.quit_on_failure if case.quit_on_failure is not None else session.target.quit_on_failure
    if result.status == FAILED and quit_on_failure:
        await _quit(session)


async def _quit(session: RunningCase) -> None:
    """After a failure, end the session as a client should (RFC 5321 §4.1.1.10), not by dropping it:
    only while it is in step, so that the QUIT is read as a command and its reply told apart."""
    if session.out_of_step():  # closed, after a timeout or a protocol error, mid-DATA: the QUIT could be misread
        return
    session.note("the case failed: ending the session with QUIT")
    session.quitting = True
    session.patience = QUIT_TIMEOUT
    deadline = time.monotonic() + QUIT_TIMEOUT
    try:
        await session.send(b"QUIT\r\n", deadline)
        reply = await session.reply(deadline)
    except StepFailed as exc:
        session.note(f"QUIT: {exc.reason}")
        return
    session.quit_reply = reply


async def run_case(job: CaseRun) -> CaseResult:
    """Run one case to its verdict, in its own scope derived from the plan's. Never raises for anything
    the server or network does."""
    case, target = job.case, job.target
    case_scope = job.scope.for_case(job.plan, case)
    session = RunningCase(job, case_scope)
    if case_scope.late_error is not None:
        cut(session, case_scope.late_error)
        session.result.steps = [not_run(s) for s in (*case.steps, *case.finally_steps)]
        return session.result
    session.result.started_at = datetime.now(timezone.utc)
    try:
        if target.session_timeout:
            await asyncio.wait_for(_run_steps(session), target.session_timeout)
        else:
            await _run_steps(session)
    except asyncio.TimeoutError:
        cut(session, f"session deadline of {target.session_timeout:g}s reached")
    except asyncio.CancelledError:  # Ctrl-C: what the case gathered is its result, and it says why it stopped
        cut(session, "interrupted")
    finally:
        if session.conn is not None:
            clean = session.result.status != FAILED or session.quit_reply is not None
            session.note_closed("client closed the connection" if clean else "client dropped the connection")
            await session.conn.shut(clean)
        if session.mail_listeners is not None:
            await session.mail_listeners.stop()
        session.result.duration = time.monotonic() - session.t0
    preview_labels(session.result, case, case_scope)  # steps not run, in this run's names (its message_id)
    if job.learn:
        job.scope.learn(case_scope, session.captures)
    return session.result
