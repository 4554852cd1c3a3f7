"""`--workers N`: the sessions of a repeated case (`--repeat`) split across N worker processes.

One Python process runs its event loop on one core; at a few thousand sessions a second the client, not
the server, is what runs out. Each worker is a process of its own with its own event loop, its share of
the sessions, of `--jobs` and of `--per-host` (so both caps still hold for the run as a whole), started
with multiprocessing's 'spawn' method before the run's event loop exists: a fresh interpreter, never a
fork of a process with a running loop, its threads and its sockets.

A worker gets the plan as the parent built it, pickled (about 10 KB, well under a millisecond), rather than
reading the files again: it runs exactly the plan that was validated, with its --var and --secret values
and the scope earlier cases of a sequential plan left, even if a file changes while the run goes on.

Each worker sends back its raw figures (runner.stats.LoadStats: every session's duration and every step's
latency, the failure reasons counted, a few failing sessions whole), and the parent merges them exactly
(LoadStats.merge) into the one `load` summary a single process would give.

Ctrl-C: the workers ignore SIGINT (they start with it ignored, so a terminal's Ctrl-C, which reaches the
whole process group, does not kill them half-way); the parent tells each to stop, and each answers with
what it has. No wait is unbounded: a worker that does not start, dies, or does not answer in time is named
in the case's reason, and the figures are those of the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from runner.errors import WorkerError
from runner.net.transport import open_connection
from runner.plan.scope import Scope
from runner.plan.types import Case, Plan, Target
from runner.run.budget import RenderBudget
from runner.run.case import CaseRun, Hop, run_case
from runner.run.hostslots import HostSlots
from runner.run.loop import new_event_loop
from runner.stats import LoadStats

__all__ = ["MAX_WORKERS", "LoadTask", "LoadWorkers", "repeat_case", "shares"]

MAX_WORKERS = 64  # each is a Python interpreter of its own (about 30 MB); beyond the cores they only contend
START_WAIT = 60.0  # seconds for every worker to start (import smtprun) before the run; a loaded machine is slow
STOP_WAIT = 5.0  # seconds for the workers' figures after a stop (Ctrl-C): sessions in flight are cancelled
JOIN_WAIT = 5.0  # seconds for a worker to exit when told to, before it is terminated


@dataclass(frozen=True)
class LoadTask:
    """One repeated case, or one worker's share of it."""

    plan: Plan
    case: Case
    target: Target
    scope: Scope
    route: tuple[Hop, ...] | None
    sessions: int
    jobs: int  # sessions in flight
    per_host: int  # sessions to one address at once


def shares(total: int, parts: int) -> list[int]:
    """`total` split into `parts` shares as even as whole numbers allow, the larger first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def repeat_case(make: Callable[[], CaseRun], stats: LoadStats, times: int, jobs: int,
                      gate: asyncio.Semaphore, stop: asyncio.Event) -> None:
    """The case `times` times, at most `jobs` at once (and each through `gate`), each folded into `stats`.
    Cancelled (Ctrl-C), it ends at once: the sessions finished so far are in `stats`."""
    left = times

    async def worker() -> None:
        nonlocal left
        while left > 0 and not stop.is_set():
            left -= 1
            async with gate:
                stats.add(await run_case(make()))

    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*(worker() for _ in range(min(jobs, times))))


# -- in the worker process ------------------------------------------------------------------------

def _watch(loop: asyncio.AbstractEventLoop, conn: multiprocessing.connection.Connection,
           callback: Callable[..., object], *args: object) -> None:
    """`callback` called when `conn` has a message. uvloop makes a watched file non-blocking; the pipe is put
    back in blocking mode so that a message is always read whole (the other end writes it whole at once)."""
    loop.add_reader(conn.fileno(), callback, *args)
    os.set_blocking(conn.fileno(), True)


async def _cancel(task: asyncio.Task[None]) -> None:
    """`task` cancelled until it has ended: a cancel can be lost in a race (wait_for in 3.11), as the parent's
    run knows (runner.run.execute._drive)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.2)

def _worker_main(conn: multiprocessing.connection.Connection) -> None:
    """A worker's life: tell the parent it is ready, then run what it is sent until told to exit (or the
    parent is gone: the pipe's end)."""
    loop = new_event_loop()
    asyncio.set_event_loop(loop)  # the process's only loop
    try:
        loop.run_until_complete(_Worker(conn).serve())
    finally:  # what the sessions left (a connection attempt cut short) ends here, quietly
        leftovers = asyncio.all_tasks(loop)
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


class _Worker:
    def __init__(self, conn: multiprocessing.connection.Connection) -> None:
        self.conn = conn
        self.running: dict[int, tuple[asyncio.Event, asyncio.Task[None]]] = {}
        self.gone = asyncio.Event()
        self.stopping: set[asyncio.Future[None]] = set()  # the tasks being cancelled (kept from the collector)
        self.gate: asyncio.Semaphore | None = None
        self.connect: HostSlots | None = None
        self.budget = RenderBudget()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        _watch(loop, self.conn, self._message)
        self.conn.send(("ready",))
        await self.gone.wait()
        loop.remove_reader(self.conn.fileno())
        for stop, task in list(self.running.values()):
            stop.set()
            await _cancel(task)

    def _message(self) -> None:
        try:
            message = self.conn.recv()
        except (EOFError, OSError):  # the parent is gone
            message = None
        if message is None:
            self.gone.set()
        elif message[0] == "load":
            _, key, task = message
            stop = asyncio.Event()
            self.running[key] = (stop, asyncio.ensure_future(self._load(key, task, stop)))
        elif message[0] == "stop" and message[1] in self.running:
            stop, task = self.running[message[1]]
            stop.set()
            task.cancel()
            self.stopping.add(asyncio.ensure_future(_cancel(task)))

    async def _load(self, key: int, task: LoadTask, stop: asyncio.Event) -> None:
        # the first task sets the worker's caps: every task of a run has the same --jobs and --per-host
        self.gate = self.gate or asyncio.Semaphore(task.jobs)
        self.connect = self.connect or HostSlots(open_connection, task.per_host)
        stats = LoadStats()

        def make() -> CaseRun:
            return CaseRun(task.plan, task.case, task.target, task.scope, route=task.route, stop=stop,
                           connect=self.connect, budget=self.budget)

        try:
            await repeat_case(make, stats, task.sessions, task.jobs, self.gate, stop)
            reply: tuple[Any, ...] = ("done", key, stats)
        except Exception as exc:  # a defect in smtprun: the parent says so in the case's reason
            reply = ("error", key, f"{type(exc).__name__}: {exc}")
        self.running.pop(key, None)
        with contextlib.suppress(OSError):  # the parent is gone: nobody to tell
            self.conn.send(reply)


# -- in the parent --------------------------------------------------------------------------------

@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while the workers start: they inherit that, and Python then installs no
    KeyboardInterrupt handler in them. Ctrl-C reaches them through the parent."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals are not ours to change
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Process:
    def __init__(self, number: int, context: Any) -> None:
        self.number = number
        self.conn, child = context.Pipe()
        self.proc = context.Process(target=_worker_main, args=(child,), name=f"smtprun-worker-{number}",
                                    daemon=True)
        with _sigint_ignored():
            self.proc.start()
        child.close()
        self.problem: str | None = None  # why it can no longer be used

    def ended(self) -> str:
        code = self.proc.exitcode
        if code is None:
            return f"worker process {self.number} closed its pipe unexpectedly"
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        return f"worker process {self.number} ended unexpectedly ({how})"


def _not_ready(p: _Process, deadline: float) -> str | None:
    """Why worker `p` did not say it was ready by `deadline`; None when it did."""
    try:
        if p.conn.poll(max(0.0, deadline - time.monotonic())) and p.conn.recv() == ("ready",):
            return None
    except (EOFError, OSError):
        p.proc.join(JOIN_WAIT)
        return f"{p.ended()} while starting"
    return f"worker process {p.number} did not start within {START_WAIT:g}s"


class LoadWorkers:
    """N worker processes for the run, started before its event loop, closed after it."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.procs: list[_Process] = []
        self.pending: dict[int, asyncio.Future[LoadStats]] = {}
        self.owner: dict[int, _Process] = {}
        self.next_key = 0
        self.loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def start_for(cls, workers: int, sessions: int, jobs: int, per_host: int) -> LoadWorkers | None:
        """The workers a repeated case can use, started: at most one per session, and per session in flight
        (each needs one of --jobs and of --per-host); None when that leaves one."""
        count = min(workers, sessions, jobs, per_host)
        return cls(count).start() if count > 1 else None

    def start(self) -> LoadWorkers:
        """Every worker started and ready (smtprun imported), or WorkerError with none left running."""
        context = multiprocessing.get_context("spawn")
        try:
            self.procs = [_Process(i + 1, context) for i in range(self.count)]
        except OSError as exc:
            self.close()
            raise WorkerError(f"cannot start {self.count} worker processes: {exc.strerror or exc}") from None
        deadline = time.monotonic() + START_WAIT
        for p in self.procs:
            problem = _not_ready(p, deadline)
            if problem is not None:
                self.close()
                raise WorkerError(problem)
        return self

    def close(self) -> None:
        """Every worker told to exit, and made to within JOIN_WAIT seconds."""
        if self.loop is not None and not self.loop.is_closed():
            for p in self.procs:
                self.loop.remove_reader(p.conn.fileno())
                self.loop.remove_reader(p.proc.sentinel)
        for p in self.procs:
            with contextlib.suppress(OSError):
                p.conn.send(None)
        deadline = time.monotonic() + JOIN_WAIT
        for p in self.procs:
            p.proc.join(max(0.0, deadline - time.monotonic()))
            if p.proc.exitcode is None:
                p.proc.kill()
                p.proc.join(JOIN_WAIT)
            p.conn.close()
        self.procs = []

    async def run(self, task: LoadTask, stop: asyncio.Event) -> tuple[LoadStats, list[str]]:
        """The task split across the live workers; their figures merged, and what went wrong with any."""
        self._attach()
        live = [p for p in self.procs if p.problem is None][:max(1, min(task.jobs, task.sessions, task.per_host))]
        if not live:
            return LoadStats(), ["no worker process is left to run the sessions"]
        keys = {}
        for p, sessions, jobs, per_host in zip(live, shares(task.sessions, len(live)), shares(task.jobs, len(live)),
                                               shares(task.per_host, len(live)), strict=True):
            keys[self._send(p, replace(task, sessions=sessions, jobs=jobs, per_host=per_host))] = p
        try:  # until all have answered, or one has failed: the case fails, the others need not go on
            if not stop.is_set():
                await asyncio.wait([self.pending[k] for k in keys], return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:  # Ctrl-C: the figures so far are still reported (below)
            pass
        if not all(self.pending[k].done() for k in keys):
            self._stop_and_collect(list(keys))
        return self._merged(keys)

    def _send(self, p: _Process, task: LoadTask) -> int:
        key = self.next_key = self.next_key + 1
        assert self.loop is not None
        self.pending[key], self.owner[key] = self.loop.create_future(), p
        try:
            p.conn.send(("load", key, task))
        except OSError:
            self._lost(p)
        return key

    def _merged(self, keys: dict[int, _Process]) -> tuple[LoadStats, list[str]]:
        stats, problems = LoadStats(), []
        for key in keys:
            future = self.pending.pop(key)
            self.owner.pop(key)
            if future.cancelled():
                continue
            if future.exception() is not None:
                problems.append(str(future.exception()))
            else:
                stats.merge(future.result())
        return stats, problems

    def _attach(self) -> None:
        """The parent's loop reads the workers' answers as they come, and sees a worker end."""
        if self.loop is not None:
            return
        self.loop = asyncio.get_running_loop()
        for p in self.procs:
            _watch(self.loop, p.conn, self._receive, p)
            self.loop.add_reader(p.proc.sentinel, self._ended, p)

    def _receive(self, p: _Process) -> bool:
        """One answer from `p` to its future; False when the pipe has ended."""
        try:
            kind, key, payload = p.conn.recv()
        except (EOFError, OSError):
            self._lost(p)
            return False
        future = self.pending.get(key)
        if future is not None and not future.done():
            if kind == "done":
                future.set_result(payload)
            else:
                future.set_exception(WorkerError(f"worker process {p.number}: internal error: {payload}"))
        return True

    def _ended(self, p: _Process) -> None:
        while p.problem is None and p.conn.poll() and self._receive(p):  # what it said before it ended
            pass
        self._lost(p)

    def _lost(self, p: _Process, problem: str | None = None) -> None:
        """`p` can no longer be used: every task it had fails, saying why."""
        if p.problem is None:
            p.proc.join(0.5)
            p.problem = problem or p.ended()
            if self.loop is not None and not self.loop.is_closed():
                self.loop.remove_reader(p.conn.fileno())
                self.loop.remove_reader(p.proc.sentinel)
        for key, owner in self.owner.items():
            future = self.pending[key]
            if owner is p and not future.done():
                future.set_exception(WorkerError(f"{p.problem}: its sessions are not in the figures"))

    def _stop_and_collect(self, keys: list[int]) -> None:
        """Ctrl-C, or a worker gone: each told to stop these tasks; their answers read here, blocking, for at most
        STOP_WAIT seconds (the loop waits: this is only ever the end of a run, or of a case gone wrong)."""
        for key in keys:
            with contextlib.suppress(OSError):
                if not self.pending[key].done():
                    self.owner[key].conn.send(("stop", key))
        deadline = time.monotonic() + STOP_WAIT
        while not all(self.pending[k].done() for k in keys) and time.monotonic() < deadline:
            waiting = {self.owner[k] for k in keys if not self.pending[k].done()}
            ready = multiprocessing.connection.wait([p.conn for p in waiting],
                                                    timeout=max(0.0, deadline - time.monotonic()))
            for p in waiting:
                if p.conn in ready:
                    self._receive(p)
        for key in keys:
            p = self.owner[key]
            if not self.pending[key].done():
                p.proc.kill()
                self._lost(p, f"worker process {p.number} did not answer within {STOP_WAIT:g}s of the stop")
