"""One run request, whatever asks for the run: `smtprun run`, `smtprun check`, the exporter, the pytest plugin.

A front end says what it was given (plans, where to connect instead of what they say, variables, limits);
`RunRequest.check()` refuses what cannot work before anything is sent — a source address that cannot
reach the host, a plan with no host to connect to — with the same words in every front end, and
`RunRequest.options()` is the engine's RunOptions for it.

The timeouts mean one thing everywhere: `reply_timeout` is how long one reply may take (a plan's
`target.timeout`), `session_timeout` how long one case may take from connecting to its last step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.errors import UsageError
from runner.net.address import ip_version
from runner.plan.targets import FleetTarget
from runner.plan.types import Plan
from runner.run.execute import RunOptions

__all__ = ["RunRequest", "read_request_plans"]

EMBEDDED_FAMILY = 4  # the embedded server listens on 127.0.0.1
# --workers auto: one process per CPU once a repeated case has this many sessions. Below it the processes'
# start (about 0.3 s: each imports smtprun) costs what a second core gains; bench/run.py measurement 2‴.
AUTO_WORKERS_FROM = 2000


@dataclass
class RunRequest:
    plans: list[Plan]
    host: str | None = None  # connect here instead of each plan's target (an MX lookup included)
    port: int | None = None
    source: str | None = None  # connect from this local address
    families: tuple[str, ...] = ()  # ("ipv4",) or ("ipv6",): MX hosts' addresses of that family only
    reply_timeout: float | None = None
    session_timeout: float | None = None
    nameservers: tuple[str, ...] = ()
    secrets: dict[str, str] = field(default_factory=dict)
    jobs: int | None = None
    per_host: int | None = None
    repeat: int = 1
    workers: int | None = None  # --workers: processes that share a repeated case's sessions; None: auto
    targets: tuple[FleetTarget, ...] = ()
    shard: tuple[int, int] | None = None
    embedded: bool = False  # the host is the embedded server, given once it has started
    host_options: str = "--host or --embedded"  # what the front end offers instead of a plan's host

    def check(self) -> None:
        """UsageError for what would fail every case the same way, before anything is sent."""
        self._check_source()
        self._check_workers()
        if not (self.embedded or self.targets or self.host):
            missing = [p.file for p in self.plans if not (p.target.host or p.target.mx or p.target.unix)]
            if missing:
                raise UsageError(f"no target host for {', '.join(missing)}: set target.host in the plan, "
                                 f"or give {self.host_options}")

    def _check_workers(self) -> None:
        """--workers: only in load mode, and no more than the sessions in flight can be shared among."""
        if self.workers is None or self.workers == 1:
            return
        from runner.run.workers import MAX_WORKERS

        if self.repeat < 2:
            raise UsageError("--workers shares the sessions of load mode among processes: give it with --repeat N")
        if self.workers > MAX_WORKERS:
            raise UsageError(f"--workers {self.workers}: at most {MAX_WORKERS}")
        for flag, cap in (("--jobs", self.jobs), ("--per-host", self.per_host)):
            if cap is not None and self.workers > cap:
                raise UsageError(f"--workers {self.workers} with {flag} {cap}: each worker process needs at least "
                                 f"one of the {flag} sessions, so at most {cap} workers")

    def _check_source(self) -> None:
        """--source against what it cannot reach: -4/-6, or a host address of the other family."""
        if self.source is None:
            return
        ours = ip_version(self.source)
        theirs = ip_version(self.host) if self.host else EMBEDDED_FAMILY if self.embedded else None
        if self.families and self.families != (f"ipv{ours}",):
            raise UsageError(f"--source {self.source} is an IPv{ours} address: it cannot go with "
                             f"{'--ipv6' if ours == 4 else '--ipv4'}")
        if theirs is not None and theirs != ours:
            raise UsageError(f"--source {self.source} is an IPv{ours} address: it cannot reach "
                             + (f"--host {self.host} (IPv{theirs})" if self.host else
                                "the embedded server (IPv4, on 127.0.0.1)"))
        from runner.net.transport import SourceUnusable, check_source

        try:
            check_source(self.source)
        except SourceUnusable as exc:
            raise UsageError(f"--source {self.source}: this machine cannot connect from it: {exc.strerror}") from None

    def processes(self) -> int:
        """The worker processes asked for; `auto` (None): one per CPU this process may use, for a repeated case
        of at least AUTO_WORKERS_FROM sessions (the engine then gives each at least one of --jobs and --per-host,
        so fewer where those are smaller), else 1."""
        if self.workers is not None:
            return self.workers
        if self.repeat < AUTO_WORKERS_FROM:
            return 1
        from runner.run.workers import MAX_WORKERS

        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, min(cpus, MAX_WORKERS))

    def options(self, **hooks: Any) -> RunOptions:
        """The engine's options for this request; `hooks` are the front end's callbacks (on_case, listener,
        on_start) and a connector of its own."""
        given: dict[str, Any] = {"jobs": self.jobs} if self.jobs else {}
        return RunOptions(host=self.host, port=self.port, timeout=self.reply_timeout,
                          session_timeout=self.session_timeout, repeat=self.repeat, per_host=self.per_host,
                          nameservers=self.nameservers, families=self.families, source=self.source,
                          secrets=dict(self.secrets), targets=self.targets, shard=self.shard, workers=self.processes(),
                          **given, **hooks)


def read_request_plans(paths: Sequence[str], variables: Sequence[tuple[str, str]],
                       secrets: Sequence[tuple[str, str]], cache_dir: Any, columns: dict[str, str] | None = None,
                       on_warning: Callable[[str], None] | None = None) -> list[Plan]:
    """Every plan (a folder: the plans in it), validated, with the --var and --secret values (and a target
    list's columns) over their variables: a name no plan reads is refused, no excerpt shows a secret."""
    from runner.plan import read_plans
    from runner.plan.schema import ValidationCache

    given = {"--var": [name for name, _ in variables], "--secret": [name for name, _ in secrets]}
    overrides = (columns or {}) | dict(variables) | dict(secrets)
    plans = read_plans(paths, overrides, ValidationCache.under(cache_dir), given, [v for _, v in secrets])
    for plan in plans:
        for warning in plan.warnings:
            if on_warning is not None:
                on_warning(warning.render())
    return plans
