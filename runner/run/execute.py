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
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from runner import __version__
from runner.net.address import ip_version
from runner.net.resolver import Lookups
from runner.net.transport import Connector, open_connection
from runner.plan.scope import Scope
from runner.plan.targets import FleetTarget, in_shard
from runner.plan.types import Case, Plan, Target
from runner.results import FAILED, INFO, SKIPPED, CaseResult, PlanResult, RunResult
from runner.run.budget import RenderBudget
from runner.run.case import CaseRun, Hop, Listener, not_run, run_case
from runner.run.hostslots import DEFAULT_PER_HOST, HostSlots
from runner.run.loop import event_loop_name, new_event_loop
from runner.run.route import FLEET_RESOLVING, fleet_route, lookup_problems, mx_notes, no_route, route_of
from runner.run.steprender import preview_labels, skip_reason
from runner.stats import LoadStats
from runner.template import RenderError

if TYPE_CHECKING:
    from runner.run.workers import LoadWorkers

__all__ = ["RunOptions", "event_loop_name", "new_event_loop", "run_plans", "run_plans_async"]

DEFAULT_JOBS = 20
NEVER_STARTED = "interrupted before it started"


@dataclass
class RunOptions:
    host: str | None = None
    port: int | None = None
    timeout: float | None = None
    session_timeout: float | None = None
    jobs: int = DEFAULT_JOBS
    repeat: int = 1
    nameservers: tuple[str, ...] = ()  # --nameserver: instead of the plans' and the system's
    families: tuple[str, ...] = ()  # --ipv4 / --ipv6
    source: str | None = None  # --source: the local address to connect from, instead of the plans'
    secrets: dict[str, str] = field(default_factory=dict)
    listener: Listener | None = None
    on_case: Callable[[PlanResult, CaseResult], None] | None = None
    connect: Connector | None = None  # how sessions connect; None: over the network
    on_start: Callable[[Callable[[], None]], None] | None = None  # given the function that stops the run, as Ctrl-C
    targets: tuple[FleetTarget, ...] = ()  # --targets: every case against each of these
    shard: tuple[int, int] | None = None  # --shard K/N: only the cases of share K
    per_host: int | None = None  # --per-host: sessions to one address at once (None: runner.run.hostslots)
    workers: int = 1  # --workers: processes that share a repeated case's sessions (runner.run.workers)
    pool: LoadWorkers | None = None  # those processes, once run_plans has started them


def target_for(plan: Plan, options: RunOptions) -> Target:
    """The plan's target with what the command line gave instead."""
    given = {"host": options.host, "port": options.port, "timeout": options.timeout,
             "session_timeout": options.session_timeout, "nameservers": options.nameservers,
             "families": options.families, "source": options.source}
    changes: dict[str, Any] = {key: value for key, value in given.items() if value}
    if options.host:  # an explicit host wins over the plan's MX lookup; the domain stays the plan's
        changes["mx"], changes["domain"] = None, plan.target.mx or plan.target.domain
    target = dataclasses.replace(plan.target, **changes)
    version = ip_version(target.source or "")
    if version and not options.families:  # MX hosts: only the addresses the source can reach
        target = dataclasses.replace(target, families=(f"ipv{version}",))
    return target


def _placeholder(case: Case, target: Target, status: str, reason: str) -> CaseResult:
    """A case's result without a session: every step not run, the case saying why."""
    result = CaseResult(name=case.name, status=status, target=str(target), line=case.line, reason=reason)
    result.steps = [not_run(s) for s in (*case.steps, *case.finally_steps)]
    return result


@dataclass(frozen=True)
class _Job:
    """One case against one route: the plan's target, or one MX host (or address) of the MX matrix."""

    case: Case
    route: tuple[Hop, ...] | None = None
    label: str = ""
    error: str | None = None  # the route could not be found (DNS): the case fails with this
    target: Target | None = None  # --targets: this job's own target instead of the plan's
    waited: float = 0.0  # seconds its MX lookup took before it failed (error), for the case's time
    notes: tuple[str, ...] = ()  # what the case's report should say about its route (an MX host skipped)
    position: int = 0  # its place among all the plan's jobs before --shard took a share: merge restores the order


class _PlanRun:
    """One plan's cases on the shared loop: routes, conditions, retries, repetitions."""

    def __init__(self, plan: Plan, options: RunOptions, gate: asyncio.Semaphore, stopping: asyncio.Event,
                 budget: RenderBudget, lookups: Lookups) -> None:
        self.plan, self.options, self.gate, self.stopping = plan, options, gate, stopping
        self.budget = budget  # the run's: large bodies of every plan's cases share it
        self.lookups = lookups  # the run's DNS: its own cap on queries in flight, each name and type asked once
        self.resolving = asyncio.Semaphore(FLEET_RESOLVING)  # --targets: the mx: domains being looked up at once
        self.target = target_for(plan, options)
        self.scope = Scope.for_plan(plan, options.secrets)  # each case runs in its own scope derived from it
        self.result = PlanResult(plan.name, plan.file, self.scope.redactor.text(plan.source), str(self.target))
        self.jobs = self._fleet() if options.targets else [_Job(c) for c in plan.cases]
        if options.targets:
            self.result.target = f"{len(options.targets)} targets"
        self._placeholders()

    def _fleet(self) -> list[_Job]:
        """--targets: each case against each target, named after it, with the target's own variables."""
        return [_Job(dataclasses.replace(c, name=f"{c.name} @ {t.text}", vars={**c.vars, **t.vars}),
                     target=t.apply(self.target))
                for t in self.options.targets for c in self.plan.cases]

    def _placeholders(self) -> None:
        """Until a case has its verdict: not run. What Ctrl-C leaves of a case that never began stays so."""
        self.jobs = [dataclasses.replace(j, position=i) for i, j in enumerate(self.jobs)]
        shard = self.options.shard
        if shard is not None:
            self.jobs = [j for j in self.jobs if in_shard(self._named(j).name, str(j.target or self.target), shard)]
        self.result.cases = [_placeholder(self._named(j), j.target or self.target, SKIPPED, NEVER_STARTED)
                             for j in self.jobs]
        for job, case in zip(self.jobs, self.result.cases, strict=True):
            case.position = job.position

    @staticmethod
    def _named(job: _Job) -> Case:
        return dataclasses.replace(job.case, name=job.case.name + job.label) if job.label else job.case

    async def run(self) -> None:
        if self.target.mx and not self.options.targets:
            self.jobs = await self._mx_jobs()
            self._placeholders()
        if self.plan.sequential:
            for i, job in enumerate(self.jobs):
                if self.stopping.is_set():
                    break
                await self._one(i, job)
        else:
            await asyncio.gather(*(self._one(i, job) for i, job in enumerate(self.jobs)))
        rendered = {c.target for c in self.result.cases if c.peer}
        if "{{" in self.result.target and len(rendered) == 1:  # `host: "{{ h }}"`: the one host its cases used
            self.result.target = rendered.pop()

    async def _mx_jobs(self) -> list[_Job]:
        """Look up the MX hosts once per plan; then every case gets a route (or, with all, one per host)."""
        from runner.net.dns import DnsError, config_for, resolve_mx

        t, t0 = self.target, time.monotonic()
        try:
            domain = self.scope.render(t.mx or "")
            if domain != t.mx:  # a template (`mx: "{{ domain }}"`): every report names the domain looked up
                self.target = t = dataclasses.replace(t, mx=domain)
                self.result.target = str(t)
            found = await resolve_mx(domain, config_for(t.nameservers, t.dns_timeout, t.families), self.lookups)
            self.result.dns_seconds = time.monotonic() - t0
        except (DnsError, RenderError, ValueError) as exc:
            if isinstance(exc, DnsError):  # a lookup that failed was made: how long it took (a timeout's wait)
                self.result.dns_seconds = time.monotonic() - t0
            return [_Job(c, error=str(exc), waited=time.monotonic() - t0) for c in self.plan.cases]
        self.result.notes = mx_notes(found)
        if not t.all_mx:
            route = route_of(found)
            error, notes = (None, lookup_problems(found)) if route else (no_route(found), ())
            return [_Job(c, route, error=error, notes=notes) for c in self.plan.cases]
        jobs = []
        for ex in found.exchangers:
            if not ex.addresses:
                jobs += [_Job(c, (), f" @ {ex.host}", ex.error) for c in self.plan.cases]
            elif t.addresses == "all":
                jobs += [_Job(c, (Hop(ex.host, a, ex.preference),), f" @ {ex.host} [{a}]")
                         for a in ex.addresses for c in self.plan.cases]
            else:
                route = tuple(Hop(ex.host, a, ex.preference) for a in ex.addresses)
                jobs += [_Job(c, route, f" @ {ex.host}") for c in self.plan.cases]
        return jobs

    async def _one(self, i: int, job: _Job) -> None:
        """One job to its verdict; a defect in smtprun fails that case only, saying so."""
        try:
            await self._verdict(i, job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = f"internal error: {type(exc).__name__}: {exc}"
            self._done(i, _placeholder(self._named(job), job.target or self.target, FAILED, reason))

    async def _verdict(self, i: int, job: _Job) -> None:
        case, target = self._named(job), job.target or self.target
        notes = list(job.notes)
        started, t0 = datetime.now(timezone.utc) - timedelta(seconds=job.waited), time.monotonic()
        if job.target is not None and job.target.mx and job.error is None:
            job, notes = await self._fleet_route(job)
        if job.error is not None:
            failed = _placeholder(case, target, FAILED, job.error)
            failed.started_at, failed.duration = started, max(time.monotonic() - t0, job.waited)  # the DNS wait
            failed.notes[:0] = notes
            self._done(i, failed)
            return
        if case.when is not None:
            scope = self.scope.for_case(self.plan, case)
            skip = skip_reason(case, scope)
            if skip:
                self._done(i, _placeholder(case, target, SKIPPED, skip), scope)
                return
        if self.options.repeat > 1:
            result = await self._load(case, job.route, target)
        else:
            result = await self._tries(case, job.route, target)
        result.notes[:0] = notes
        self._done(i, result, ran=True)

    async def _fleet_route(self, job: _Job) -> tuple[_Job, list[str]]:
        """An `mx:domain` target: its MX hosts looked up (FLEET_RESOLVING domains at once), then the route."""
        route, error, notes = await fleet_route(job.target or self.target, self.lookups, self.resolving)
        return dataclasses.replace(job, route=route, error=error), notes

    async def _tries(self, case: Case, route: tuple[Hop, ...] | None, target: Target) -> CaseResult:
        """The case, tried again after a failure as often as its `retry:` allows; the last try is its result."""
        tries = 1 + (case.retry.times if case.retry else 0)
        earlier: list[CaseResult] = []
        t0 = time.monotonic()
        started = datetime.now(timezone.utc)
        for attempt in range(tries):
            if attempt:
                await asyncio.sleep(case.retry.delay if case.retry else 0)
            async with self.gate:
                if self.stopping.is_set() and not attempt:  # Ctrl-C while it waited for a free session
                    return _placeholder(case, target, SKIPPED, NEVER_STARTED)
                result = await run_case(CaseRun(self.plan, case, target, self.scope, self.options.listener,
                                                self.plan.sequential, route, self.stopping, self.options.connect,
                                                self.budget))
            if result.status != FAILED or attempt == tries - 1 or self.stopping.is_set() or not result.retryable:
                break
            earlier.append(result)
            if self.options.listener is not None:  # -v: this try's verdict before the next session's lines
                delay = case.retry.delay if case.retry else 0
                self.options.listener(case.name, INFO, f"try {attempt + 1} of {tries} failed: {result.reason}; "
                                                       f"trying again in {delay:g}s".encode())
        result.attempts = earlier
        if earlier:
            result.started_at, result.duration = started, time.monotonic() - t0  # every try, the waits between
            used = len(earlier) + 1
            if result.status != FAILED:
                result.notes.append(f"passed on try {used} of {tries}")
            else:
                result.notes.append(f"failed all {tries} tries" if used == tries else f"failed {used} of {tries} tries")
        return result

    async def _load(self, case: Case, route: tuple[Hop, ...] | None, target: Target) -> CaseResult:
        """--repeat: the case `repeat` times, `jobs` at a time, folded into figures as they finish."""
        if self.options.pool is not None:
            return await self._load_spread(case, route, target)
        stats, left = LoadStats(), self.options.repeat
        t0 = time.monotonic()
        started = datetime.now(timezone.utc)

        async def worker() -> None:
            nonlocal left
            while left > 0 and not self.stopping.is_set():
                left -= 1
                async with self.gate:
                    job = CaseRun(self.plan, case, target, self.scope, route=route, stop=self.stopping,
                                  connect=self.options.connect, budget=self.budget)
                    stats.add(await run_case(job))

        with contextlib.suppress(asyncio.CancelledError):  # Ctrl-C: the sessions so far still make figures
            await asyncio.gather(*(worker() for _ in range(min(self.options.jobs, self.options.repeat))))
        return stats.result(self._first(case, target, stats), case.name, time.monotonic() - t0, started)

    async def _load_spread(self, case: Case, route: tuple[Hop, ...] | None, target: Target) -> CaseResult:
        """--workers: the sessions split across the worker processes, their figures merged exactly."""
        from runner.run.workers import LoadTask

        task = LoadTask(self.plan, case, target, self.scope, route, self.options.repeat, self.options.jobs,
                        _per_host(self.options))
        t0, started = time.monotonic(), datetime.now(timezone.utc)
        stats, problems = await self.options.pool.run(task, self.stopping)  # type: ignore[union-attr]
        stats.processes = self.options.pool.count  # type: ignore[union-attr]
        return stats.result(self._first(case, target, stats), case.name, time.monotonic() - t0, started, problems)

    @staticmethod
    def _first(case: Case, target: Target, stats: LoadStats) -> CaseResult:
        return stats.first if stats.first is not None else _placeholder(case, target, FAILED, "no session ran")

    def _done(self, i: int, result: CaseResult, scope: Scope | None = None, ran: bool = False) -> None:
        """A case's result in its place. A case that ran labelled its own steps in its scope; one that did not
        is labelled in `scope` (the one its `when:` was judged in), or a scope of its own."""
        if not ran:
            case = self.jobs[i].case
            preview_labels(result, case, scope or self.scope.for_case(self.plan, case))
        result.position = self.jobs[i].position
        self.result.cases[i] = result
        if self.options.on_case is not None:
            self.options.on_case(self.result, result)


def _per_host(options: RunOptions) -> int:
    return options.per_host or (options.jobs if options.repeat > 1 else DEFAULT_PER_HOST)


async def _run(plans: list[Plan], options: RunOptions, run: RunResult, stop: asyncio.Event | None = None) -> None:
    """The run; with `stop` given, its owner (an exporter's probe) stops it, and Ctrl-C is left alone."""
    gate = asyncio.Semaphore(max(1, options.jobs))
    options = dataclasses.replace(options, connect=HostSlots(options.connect or open_connection, _per_host(options)))
    own_signals = stop is None
    stop = stop or asyncio.Event()
    if options.on_start is not None:
        options.on_start(stop.set)
    budget = RenderBudget()
    async with Lookups() as lookups:  # the run's DNS, closed (what is still asked cancelled) when it ends
        runs = [_PlanRun(plan, options, gate, stop, budget, lookups) for plan in plans]
        run.plans.extend(r.result for r in runs)
        await _drive({asyncio.ensure_future(r.run()) for r in runs}, run, stop, own_signals)


async def _drive(pending: set[asyncio.Future[Any]], run: RunResult, stop: asyncio.Event, own_signals: bool) -> None:
    """Wait for the plans' runs, or for `stop` (Ctrl-C), then stop what is left."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or no signals
        if own_signals:
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
    if stop.is_set():
        run.interrupted = True
        while pending:  # a cancel can be lost in a race (wait_for in 3.11): ask again until all have stopped
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.2)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        if own_signals:
            loop.remove_signal_handler(signal.SIGINT)


async def run_plans_async(plans: list[Plan], options: RunOptions, stop: asyncio.Event) -> RunResult:
    """The run on the caller's event loop (an exporter's): setting `stop` ends it early, what ran reported."""
    run = RunResult(version=__version__, started_at=datetime.now(timezone.utc), shard=options.shard)
    t0 = time.monotonic()
    await _run(plans, options, run, stop)
    run.duration = time.monotonic() - t0
    return run


def _start_workers(options: RunOptions) -> LoadWorkers | None:
    """--workers N in load mode, over the network: the processes, started before the run's event loop."""
    if options.workers <= 1 or options.repeat <= 1 or options.connect is not None:
        return None
    from runner.run.workers import LoadWorkers

    return LoadWorkers.start_for(options.workers, options.repeat, options.jobs, _per_host(options))


def run_plans(plans: list[Plan], options: RunOptions) -> RunResult:
    run = RunResult(version=__version__, started_at=datetime.now(timezone.utc), shard=options.shard)
    t0 = time.monotonic()
    options = dataclasses.replace(options, pool=(pool := _start_workers(options)))
    loop = new_event_loop(options.repeat * sum(len(p.cases) for p in plans) * max(1, len(options.targets)))  # sessions
    try:
        loop.run_until_complete(_run(plans, options, run))
    finally:
        leftovers = asyncio.all_tasks(loop)
        for task in leftovers:
            task.cancel()
        if leftovers:
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        if pool is not None:
            pool.close()
    run.duration = time.monotonic() - t0
    return run
