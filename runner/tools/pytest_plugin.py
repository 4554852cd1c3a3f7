"""pytest plugin: every case of a plan is a test item.

Collected: files named ``*.smtp.yaml`` wherever pytest looks, and the plans given with ``--smtprun``
(a plan file, or a directory whose ``*.yaml`` files are plans). An invalid plan is one collection
error showing the compiler-style messages; a failing case shows its failing step and its transcript,
as the command line does. Neither shows a Python traceback: both are the plan's doing, not the code's.

Installed as the ``smtprun`` entry point of the ``pytest11`` group; without installing, use
``pytest -p runner.tools.pytest_plugin``.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from runner.arguments import name_value, tcp_port

if TYPE_CHECKING:
    from runner.plan import Case, Plan, Target
    from runner.results import CaseResult
    from runner.run.request import RunRequest
    from runner.tools.server import EmbeddedServer

__all__ = ["PLAN_SUFFIX", "CaseFailed", "CaseItem", "PlanFile"]

PLAN_SUFFIX = ".smtp.yaml"  # collected wherever pytest looks, like test_*.py
MARKER = "smtprun"


# -- options --------------------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("smtprun", "smtprun: SMTP test plans as tests")
    group.addoption("--smtprun", action="append", default=[], metavar="PATH", dest="smtprun_paths",
                    help="collect this plan file, or every *.yaml plan in this directory (repeatable); "
                         "*.smtp.yaml files are collected anyway")
    group.addoption("--smtprun-host", metavar="HOST", help="connect here instead of each plan's target.host")
    group.addoption("--smtprun-port", type=tcp_port, metavar="PORT", help="connect to this port instead of each plan's")
    group.addoption("--smtprun-var", action="append", type=name_value, default=[], metavar="NAME=VALUE",
                    help="set a plan variable, over the plan's vars (repeatable)")
    group.addoption("--smtprun-embedded", action="store_true",
                    help="start the embedded SMTP server once per session (per worker with -n) and run "
                         "every plan against it")


# -- session state --------------------------------------------------------------------------

@dataclass
class _Settings:
    """What the command line asked for, and the embedded server once it is running."""

    host: str | None
    port: int | None
    variables: dict[str, str]
    embedded: bool
    plan_files: frozenset[Path]  # resolved paths given with --smtprun
    server: EmbeddedServer | None = field(default=None, repr=False)
    names: set[str] = field(default_factory=set)  # what the plans read so far declare or read (Plan.names)
    plans_read: int = 0
    unreadable: bool = False  # a plan failed validation: its names are unknown
    unread: str | None = None  # under xdist: the --smtprun-var no plan reads, failing every case

    def request(self, plan: Plan) -> RunRequest:
        """The run request for one case's plan: --smtprun-host/-port, or the embedded server."""
        from runner.run.request import RunRequest

        if self.embedded:
            if self.server is None:  # started on first use: a collect-only run, or xdist's controller, needs none
                from runner.tools.server import EmbeddedServer

                self.server = EmbeddedServer().start()
            return RunRequest([plan], host=self.server.host, port=self.server.port, embedded=True)
        return RunRequest([plan], host=self.host, port=self.port,
                          host_options="--smtprun-host or --smtprun-embedded")

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


_SETTINGS = pytest.StashKey[_Settings]()


def _plan_paths(given: list[str], base: Path) -> list[Path]:
    """The plan files named by --smtprun: a file as is, a directory as the plans directly inside it (its
    *.yaml files but for bare lists of steps, which are files to include)."""
    from runner.plan.load import plans_in

    found: list[Path] = []
    for text in given:
        path = (base / text).resolve()
        if path.is_dir():
            plans = plans_in(path)
            if not plans:
                raise pytest.UsageError(f"--smtprun {text}: no *.yaml plans in this directory")
            found.extend(plans)
        elif path.is_file():
            found.append(path)
        else:
            raise pytest.UsageError(f"--smtprun {text}: no such file or directory")
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """`pytest --smtprun plans/x.yaml` naming no tests where the project sets `testpaths`: the conftest
    files there (which may need test extras) are not loaded, as those tests are not collected
    (pytest_configure)."""
    namespace = early_config.known_args_namespace
    if getattr(namespace, "smtprun_paths", None) and not namespace.file_or_dir and early_config.getini("testpaths"):
        namespace.file_or_dir = list(namespace.smtprun_paths)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a case of an smtprun plan (select plans alone with -m {MARKER})")
    paths = _plan_paths(config.getoption("smtprun_paths"), config.invocation_params.dir)
    if config.getoption("smtprun_embedded"):
        given = [f"--smtprun-{name}" for name in ("host", "port") if config.getoption(f"smtprun_{name}")]
        if given:
            raise pytest.UsageError(f"{' and '.join(given)} cannot be given with --smtprun-embedded: it runs "
                                    "the plans against the embedded server")
    config.stash[_SETTINGS] = _Settings(
        host=config.getoption("smtprun_host"),
        port=config.getoption("smtprun_port"),
        variables=dict(config.getoption("smtprun_var")),
        embedded=config.getoption("smtprun_embedded"),
        plan_files=frozenset(paths),
    )
    if paths and config.args_source == pytest.Config.ArgsSource.TESTPATHS:
        # `pytest --smtprun plans/x.yaml` names no tests: it means the plans, not the project's testpaths
        config.args[:] = [str(p) for p in paths]
        return
    # Plans given with --smtprun are collected besides the tests named, or those pytest finds where it
    # was started (pytest drops an argument another one already covers: a plan is never collected twice).
    config.args.extend(str(p) for p in paths if str(p) not in config.args)


def pytest_unconfigure(config: pytest.Config) -> None:
    settings = config.stash.get(_SETTINGS, None)
    if settings is not None:
        settings.close()


def pytest_collection_finish(session: pytest.Session) -> None:
    """A --smtprun-var no collected plan reads would be ignored and a case pass on the plan's own value."""
    from runner.plan.schema import did_you_mean

    settings = session.config.stash[_SETTINGS]
    if settings.unreadable or not settings.plans_read:
        return
    unread = [name for name in settings.variables if name not in settings.names]
    if not unread:
        return
    message = "; ".join(f"--smtprun-var {name}: no plan collected has a variable '{name}'"
                        + (f" ({close})" if (close := did_you_mean(name, settings.names)) else "") for name in unread)
    if hasattr(session.config, "workerinput"):  # an xdist worker's usage error would be taken for a crash:
        settings.unread = message  # every case fails with it instead
        return
    raise pytest.UsageError(message)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> PlanFile | None:
    settings = parent.config.stash[_SETTINGS]
    if file_path.name.endswith(PLAN_SUFFIX) or (settings.plan_files and file_path.resolve() in settings.plan_files):
        return PlanFile.from_parent(parent, path=file_path)
    return None


# -- collection -----------------------------------------------------------------------------

def _display(path: Path, config: pytest.Config) -> str:
    """The plan's name in messages: relative to where pytest was started, as a user would type it."""
    base = config.invocation_params.dir
    relative = os.path.relpath(path, base)
    if relative.startswith(os.pardir) or Path.cwd() != base:
        return str(path)
    return relative


class PlanFile(pytest.File):
    """A plan file; its children are its cases. Reading it validates it completely."""

    def collect(self) -> Iterator[CaseItem]:
        from runner.errors import PlanError
        from runner.plan import read_plan

        settings = self.config.stash[_SETTINGS]
        try:
            plan = read_plan(_display(self.path, self.config), settings.variables)
        except PlanError:  # shown by repr_failure
            settings.unreadable = True
            raise
        settings.plans_read += 1
        settings.names |= plan.names
        for warning in plan.warnings:  # in pytest's warnings summary, as the command line prints them
            self.warn(pytest.PytestWarning(warning.render()))
        names = Counter(case.name for case in plan.cases)
        for case in plan.cases:
            name = case.name if names[case.name] == 1 else f"{case.name} (line {case.line})"
            yield CaseItem.from_parent(self, name=name, plan=plan, case=case)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from runner.errors import PlanError

        if isinstance(excinfo.value, PlanError):
            return str(excinfo.value)  # file:line:col: error: ..., the source line, a caret, a hint
        return super().repr_failure(excinfo, style)


# -- running --------------------------------------------------------------------------------

def _transcript(result: CaseResult, colour: bool = False) -> str:
    """C: what was sent, S: what the server answered, * smtprun's notes; as `smtprun -v` prints it."""
    from runner.console import Console

    out = io.StringIO()
    console = Console(out=out, err=out, colour=colour)
    for event in result.transcript:
        console.live(result.name, event.direction, event.data)
    return out.getvalue()


@dataclass(frozen=True)
class _Crash:
    """Where and why, in one line: pytest's short summary and JUnit's failure message read it."""

    path: str
    lineno: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.message}"


@dataclass(frozen=True)
class CaseFailureRepr:
    """A failed case as the command line shows it: the failing step, then the transcript."""

    plan_file: str
    target: str
    result: CaseResult | None
    reason: str
    reprcrash: _Crash

    def render(self, colour: bool = False) -> str:
        from runner.console import Console
        from runner.results import PlanResult

        if self.result is None:
            return self.reason + "\n"
        out = io.StringIO()
        console = Console(out=out, err=out, colour=colour)
        console.case_done(PlanResult("", self.plan_file, "", self.target), self.result)
        if self.result.transcript:
            out.write("transcript:\n" + _transcript(self.result, colour))
        return out.getvalue()

    def toterminal(self, tw: Any) -> None:
        tw.write(self.render(colour=bool(getattr(tw, "hasmarkup", False))))

    def __str__(self) -> str:
        return self.render()


class CaseFailed(Exception):
    """A case did not pass; carries what its report shows instead of a traceback."""

    def __init__(self, failure: CaseFailureRepr):
        super().__init__(failure.reason)
        self.failure = failure


class CaseItem(pytest.Item):
    """One case of a plan: its own connection, its own verdict."""

    def __init__(self, *, plan: Plan, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.case = case
        self.add_marker(MARKER)

    def runtest(self) -> None:
        """The case through the same executor as the command line (MX routes, retries, conditions).

        A case's `when:` sees only this plan's variables here: the earlier cases that could teach it
        EHLO keywords may run in another worker.
        """
        import dataclasses

        from runner.errors import SmtprunError
        from runner.run.execute import run_plans, target_for

        settings = self.config.stash[_SETTINGS]
        if settings.unread is not None:
            raise CaseFailed(self._failure(self.plan.target, None, settings.unread, self.plan.file, self.case.line))
        request = settings.request(dataclasses.replace(self.plan, cases=(self.case,)))
        options = request.options()
        target = target_for(self.plan, options)
        try:
            request.check()
        except SmtprunError as exc:  # no host to connect to: the case fails saying so
            raise CaseFailed(self._failure(target, None, str(exc), self.plan.file, self.case.line)) from None
        run = run_plans(request.plans, options)
        if run.interrupted:
            raise KeyboardInterrupt
        results = run.plans[0].cases  # one per MX host with `all: true`; all must pass
        self.user_properties.extend(("peer", r.peer) for r in results if r.peer)
        result = self._verdict(target, results, run.errors)
        self.add_report_section("call", "transcript", _transcript(result))

    def _verdict(self, target: Target, results: list[CaseResult], errors: list[str]) -> CaseResult:
        """The result of a case that passed; a case that did not raises CaseFailed, or is skipped."""
        from runner.results import FAILED, SKIPPED

        failed = [r for r in results if r.status == FAILED]
        result = failed[0] if failed else results[0]
        if errors:
            raise CaseFailed(self._failure(target, result, "; ".join(errors), self.plan.file, self.case.line))
        if all(r.status == SKIPPED for r in results):
            pytest.skip(result.reason or "skipped")
        if failed:
            raise CaseFailed(self._step_failure(target, result, len(failed), len(results)))
        return result

    def _step_failure(self, target: Target, result: CaseResult, failed: int, routes: int) -> CaseFailureRepr:
        """A failed case, placed at its failing step; with several MX routes, how many failed."""
        step = result.failed_step
        file, line = self.plan.file, self.case.line
        if step is not None and step.line:
            file, line = step.file or self.plan.file, step.line  # an included step names its own file
        reason = result.reason or "failed"
        if routes > 1:
            reason = f"{result.name}: {reason} ({failed} of {routes} routes failed)"
        return self._failure(target, result, reason, file, line)

    def _failure(self, target: Target, result: CaseResult | None, reason: str, file: str,
                 line: int) -> CaseFailureRepr:
        return CaseFailureRepr(self.plan.file, str(target), result, reason, _Crash(file, line, reason))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            return excinfo.value.failure
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, self.case.name
