"""`smtprun exporter --plans DIR`: a Prometheus exporter in the blackbox_exporter style.

`GET /probe?plan=NAME` runs DIR/NAME.yaml on the exporter's event loop and answers its metrics
(runner.tools.probe_metrics); `target=` points it elsewhere only where `--allow-target` allows it, so
the exporter cannot be made to connect anywhere (blackbox_exporter's SSRF lesson). With `--report-dir`
each probe's HTML report is written there too (runner.tools.probe_reports), and `/` links to them. Plan names are
file names in DIR, never paths. At most `--max-concurrent` probes run at once; others wait within
their scrape's time or get 503. A plan is re-read and re-validated when its file changes, with the
`--var` values over its variables. A failed probe says where and why in smtprun_probe_failure_info
(runner.tools.probe_reasons).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import html
import re
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.process_collector import ProcessCollector

from runner.arguments import ArgumentParser, host_port, name_value, seconds, whole_number
from runner.environment import Environment
from runner.errors import PlanError, SmtprunError, UsageError
from runner.net.address import hostport
from runner.plan import Plan, read_plan, read_plans
from runner.plan.targets import FleetTarget, parse_target
from runner.run.execute import new_event_loop, run_plans_async
from runner.run.request import RunRequest
from runner.status import ExitStatus
from runner.tools.probe_metrics import probe_registry
from runner.tools.probe_reports import ProbeReports

__all__ = ["Exporter", "main"]

DEFAULT_LISTEN = ("127.0.0.1", 9465)
DEFAULT_TIMEOUT = 10.0  # without the scrape-timeout header: Prometheus's own default scrape_timeout
MAX_QUERY = 1024  # bytes of query string: a plan name and a target need far less
_PLAN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_SUFFIXES = (".yaml", ".yml")


class _Refused(Exception):
    """A probe request that cannot be served: its HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class _Loaded:
    key: tuple[int, int, int]  # (mtime_ns, size, inode): a change means read it again
    plan: Plan | None
    problem: str | None  # the plan error's headline, when it does not validate


def _headline(exc: PlanError) -> str:
    """A plan error in one line, as a probe of the plan answers: where its first problem is and what it is."""
    return exc.problems[0].render().splitlines()[0]


@dataclass(frozen=True)
class Settings:
    plans_dir: Path
    allow_targets: tuple[str, ...] = ()
    max_concurrent: int = 10
    timeout: float = DEFAULT_TIMEOUT
    timeout_offset: float = 0.25  # seconds kept back from the scrape timeout for the answer to travel
    jobs: int = 20  # sessions in flight within one probe
    report_dir: Path | None = None  # each probe's HTML report written here
    keep_reports: int = 100  # per plan, in report_dir
    variables: tuple[tuple[str, str], ...] = ()  # --var NAME=VALUE, over every plan's vars


class Exporter:
    def __init__(self, settings: Settings, log=None) -> None:
        self.settings = settings
        self.log = log or (lambda line: None)
        self.plans: dict[str, _Loaded] = {}
        self.slots = asyncio.Semaphore(settings.max_concurrent)
        self.waiting = 0
        disable_created_metrics()  # no *_created series beside every counter
        self.registry = CollectorRegistry(auto_describe=True)
        self.reports = None
        if settings.report_dir:
            written = Counter("smtprun_exporter_reports", "HTML reports of probes, by plan and outcome "
                              "(written, failed, dropped)", ("plan", "outcome"), registry=self.registry)
            self.reports = ProbeReports(settings.report_dir, settings.keep_reports, self.log,
                                        lambda plan, outcome: written.labels(plan, outcome).inc())
        ProcessCollector(registry=self.registry)
        self.probes = Counter("smtprun_exporter_probes", "Probes answered, by plan and outcome",
                              ("plan", "outcome"), registry=self.registry)
        self.refused = Counter("smtprun_exporter_requests_refused", "Probe requests refused, by HTTP status",
                               ("status",), registry=self.registry)
        self.in_flight = Gauge("smtprun_exporter_probes_in_flight", "Probes running now", registry=self.registry)
        self.valid = Gauge("smtprun_exporter_plan_valid", "Whether the plan file validates (1) or not (0)",
                           ("plan",), registry=self.registry)

    # -- plans ----------------------------------------------------------------------------------
    def plan_files(self) -> dict[str, Path]:
        found = {}
        with contextlib.suppress(OSError):
            for path in sorted(self.settings.plans_dir.iterdir()):
                if path.suffix in _SUFFIXES and _PLAN_NAME.fullmatch(path.stem) and path.is_file():
                    found.setdefault(path.stem, path)
        return found

    def load(self, name: str, path: Path) -> _Loaded:
        """The plan, read again (and validated again) only when its file changed; problems logged once."""
        try:
            st = path.stat()
        except OSError as exc:
            raise _Refused(400, f"plan {name!r}: {exc.strerror or exc}") from None
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        loaded = self.plans.get(name)
        if loaded is not None and loaded.key == key:
            return loaded
        try:
            loaded = _Loaded(key, read_plan(path, dict(self.settings.variables)), None)
        except PlanError as exc:
            loaded = _Loaded(key, None, _headline(exc))
            for line in str(exc).splitlines():
                self.log(f"smtprun exporter: {line}")
        except SmtprunError as exc:
            loaded = _Loaded(key, None, f"{path}: {exc}")
            self.log(f"smtprun exporter: {loaded.problem}")
        self.plans[name] = loaded
        self.valid.labels(name).set(1 if loaded.plan else 0)
        return loaded

    def check_variables(self, good: list[str]) -> None:
        """A --var that none of the plans reads is a usage error, as `smtprun run` makes it: a mistyped name
        would otherwise leave the plans on their own values."""
        files = self.plan_files()
        paths = [str(files[name]) for name in good if name in files]
        if not (self.settings.variables and paths):
            return
        given = {"--var": [name for name, _ in self.settings.variables]}
        with contextlib.suppress(PlanError):  # edited since it was loaded: its next probe says so
            read_plans(paths, dict(self.settings.variables), given=given)

    def load_all(self) -> list[str]:
        """The plans in the folder now, each read again if it changed; a plan whose file is gone is
        forgotten (and its smtprun_exporter_plan_valid series dropped). The names of those that validate."""
        files = self.plan_files()
        for gone in set(self.plans) - set(files):
            del self.plans[gone]
            self.valid.remove(gone)
        good = []
        for name, path in files.items():
            with contextlib.suppress(_Refused):  # removed between the listing and the stat
                if self.load(name, path).plan is not None:
                    good.append(name)
        return good

    # -- one probe ------------------------------------------------------------------------------
    def _plan_for(self, request: web.Request) -> tuple[str, Plan]:
        if len(request.query_string) > MAX_QUERY:
            raise _Refused(400, f"query longer than {MAX_QUERY} bytes")
        name = request.query.get("plan")
        if not name:
            raise _Refused(400, "plan parameter is missing: /probe?plan=NAME")
        if not _PLAN_NAME.fullmatch(name) or name.startswith(".."):
            raise _Refused(400, f"plan {name!r} is not a plan name: the name of a .yaml file in the plans folder")
        path = self.plan_files().get(name)
        if path is None:
            raise _Refused(400, f"unknown plan {name!r}")
        loaded = self.load(name, path)
        if loaded.plan is None:
            raise _Refused(400, f"plan {name!r} does not validate: {loaded.problem}")
        return name, self._targeted(loaded.plan, request.query.get("target"))

    def _targeted(self, plan: Plan, target: str | None) -> Plan:
        if target is None:
            return plan
        if not self.settings.allow_targets:
            raise _Refused(400, "target= is not allowed: the exporter was started without --allow-target")
        try:
            label, host, port, mx = parse_target(target)
        except ValueError as exc:
            raise _Refused(400, f"target {target!r}: {exc}") from None
        full = f"mx:{mx}:{port or plan.target.port}" if mx else hostport(host or "", port or plan.target.port)
        if not any(fnmatch.fnmatchcase(full, pattern) for pattern in self.settings.allow_targets):
            raise _Refused(400, f"target {full} is not allowed by --allow-target")
        return replace(plan, target=FleetTarget(label, 0, host, port, mx).apply(plan.target))

    def budget(self, request: web.Request) -> float:
        """Seconds this probe may take: the scrape's timeout (its header) less the offset, within --timeout."""
        header = request.headers.get("X-Prometheus-Scrape-Timeout-Seconds")
        try:
            scrape = float(header) if header else self.settings.timeout
        except ValueError:
            scrape = self.settings.timeout
        if not scrape > 0:
            scrape = self.settings.timeout
        return max(0.1, min(scrape, self.settings.timeout) - self.settings.timeout_offset)

    async def probe(self, request: web.Request) -> web.Response:
        t0 = time.monotonic()
        try:
            name, plan = self._plan_for(request)
            budget = self.budget(request)
            await self._slot(budget)
        except _Refused as exc:
            self.refused.labels(str(exc.status)).inc()
            return web.Response(status=exc.status, text=exc.reason + "\n")
        left = budget - (time.monotonic() - t0)
        reply_timeout = min(plan.target.timeout, left)
        try:
            self.in_flight.inc()
            run = await self._run(plan, left, reply_timeout) if left > 0 else None
        finally:
            self.in_flight.dec()
            self.slots.release()
        registry = probe_registry(run, time.monotonic() - t0, plan, reply_timeout)
        ok = run is not None and run.status == "passed" and not run.interrupted
        self.probes.labels(name, "success" if ok else "failure").inc()
        if self.reports and run is not None:
            self.reports.save(name, run)
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    async def _slot(self, budget: float) -> None:
        """One of --max-concurrent places, waited for within the probe's time; a bounded queue."""
        if self.waiting >= 10 * self.settings.max_concurrent:
            raise _Refused(503, "too many probes waiting; try again later")
        self.waiting += 1
        try:
            await asyncio.wait_for(self.slots.acquire(), budget)
        except asyncio.TimeoutError:
            raise _Refused(503, f"no probe slot free within {budget:g}s (--max-concurrent "
                                f"{self.settings.max_concurrent})") from None
        finally:
            self.waiting -= 1

    async def _run(self, plan: Plan, budget: float, reply_timeout: float):
        stop = asyncio.Event()
        timer = asyncio.get_running_loop().call_later(budget, stop.set)
        options = RunRequest([plan], reply_timeout=reply_timeout, session_timeout=budget,
                             jobs=self.settings.jobs).options()
        try:
            return await run_plans_async([plan], options, stop)
        finally:
            timer.cancel()

    # -- the other pages ------------------------------------------------------------------------
    async def metrics(self, request: web.Request) -> web.Response:
        self.load_all()  # plan_valid for the plans in the folder now, added, edited or removed
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    async def index(self, request: web.Request) -> web.Response:
        rows = []
        for name, path in self.plan_files().items():
            loaded = self.load(name, path)
            state = "ok" if loaded.plan else f"does not validate: {loaded.problem}"
            link = f'<a href="probe?plan={html.escape(name)}">{html.escape(name)}</a>'
            latest = self.reports.latest.get(name) if self.reports else None
            report = f' · <a href="reports/{html.escape(latest)}">latest report</a>' if latest else ""
            rows.append(f"<li>{link} <small>({html.escape(state)})</small>{report}</li>")
        body = ("<!doctype html><html><head><meta charset=utf-8><title>smtprun exporter</title></head><body>"
                "<h1>smtprun exporter</h1><p>Plans in " + html.escape(str(self.settings.plans_dir)) + ":</p><ul>"
                + "".join(rows) + '</ul><p><a href="metrics">the exporter\'s own metrics</a></p></body></html>')
        return web.Response(text=body, content_type="text/html")

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4096)  # a probe has no body
        app.router.add_get("/", self.index)
        app.router.add_get("/probe", self.probe)
        app.router.add_get("/metrics", self.metrics)
        if self.reports:
            app.router.add_get("/reports/{name}", self.reports.serve)
        return app


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="smtprun exporter",
                            description="A Prometheus exporter: GET /probe?plan=NAME runs a plan.")
    parser.add_argument("--plans", required=True, metavar="DIR", help="the folder of plan files (NAME.yaml)")
    parser.add_argument("--listen", type=host_port, default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help="where to answer (default 127.0.0.1:9465)")
    parser.add_argument("--allow-target", action="append", default=[], metavar="PATTERN", type=_pattern,
                        help="let target= point a probe at host:port (or mx:domain:port) matching this glob, "
                             "e.g. '127.0.0.1:*' (repeatable; without it target= is refused)")
    parser.add_argument("--max-concurrent", type=whole_number(10_000), default=10, metavar="N",
                        help="probes running at once (default 10); others wait within their time, or get 503")
    parser.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT,
                        help=f"seconds a probe may take at most (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--var", action="append", type=name_value, default=[], metavar="NAME=VALUE",
                        help="set a plan variable in every plan, as `smtprun run --var` does (repeatable)")
    parser.add_argument("--report-dir", metavar="DIR",
                        help="write each probe's HTML report here (and its index.html); / links to them")
    parser.add_argument("--keep-reports", type=whole_number(10_000), default=100, metavar="N",
                        help="with --report-dir: each plan's newest N reports are kept (default 100)")
    parser.add_argument("--timeout-offset", type=float, default=0.25, metavar="SECONDS",
                        help="kept back from the scrape timeout Prometheus sends (default 0.25)")
    return parser


def _pattern(text: str) -> str:
    if not text.strip() or text != text.strip():
        raise argparse.ArgumentTypeError(f"expected a host:port glob such as '127.0.0.1:*', got {text!r}")
    return text


async def _serve(exporter: Exporter, host: str, port: int, out) -> None:
    runner = web.AppRunner(exporter.app(), access_log=None, handle_signals=False, keepalive_timeout=15)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port, backlog=1024).start()
        except OSError as exc:
            raise SmtprunError(f"cannot listen on {hostport(host, port)}: {exc.strerror or exc}") from None
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, done.set)
        out.write(f"smtprun exporter: listening on http://{hostport(host, port)}/\n")
        out.flush()
        await done.wait()
    finally:
        await runner.cleanup()
        if exporter.reports:
            await exporter.reports.close()


def main(argv: Sequence[str], env: Environment) -> int:
    def log(line: str) -> None:
        env.stderr.write(line + "\n")
        env.stderr.flush()

    try:
        args = _parser().parse_args(list(argv))
        plans_dir = Path(args.plans)
        if not plans_dir.is_dir():
            raise UsageError(f"--plans {args.plans}: not a folder")
        if args.report_dir is not None:
            from runner.report.outputs import check_outputs

            check_outputs(None, None, args.report_dir)
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        settings = Settings(plans_dir, tuple(args.allow_target), args.max_concurrent, args.timeout,
                            max(0.0, args.timeout_offset),
                            report_dir=Path(args.report_dir) if args.report_dir else None,
                            keep_reports=args.keep_reports, variables=tuple(args.var))
        exporter = Exporter(settings, log)
        good = exporter.load_all()
        exporter.check_variables(good)
        if exporter.reports:
            exporter.reports.prepare(list(exporter.plan_files()))
        bad = sorted(set(exporter.plans) - set(good))
        env.stdout.write(f"smtprun exporter: {len(good)} plan{'s' * (len(good) != 1)} in {plans_dir}"
                         + (f" ({', '.join(good)})" if good else "")
                         + (f"; not valid: {', '.join(bad)}" if bad else "") + "\n")
        try:
            loop.run_until_complete(_serve(exporter, *args.listen[:1], args.listen[1] or DEFAULT_LISTEN[1], env.stdout))
        finally:
            loop.close()
            asyncio.set_event_loop(None)
    except SystemExit as exc:
        return int(exc.code or 0)
    except UsageError as exc:
        for line in str(exc).splitlines():
            log("smtprun exporter: " + line.removeprefix("smtprun exporter: ").removeprefix("smtprun: "))
        return int(ExitStatus.USAGE)
    except SmtprunError as exc:
        log(f"smtprun exporter: {exc}")
        return int(ExitStatus.ERROR)
    except KeyboardInterrupt:
        return int(ExitStatus.INTERRUPTED)
    return int(ExitStatus.OK)

