"""`smtprun [run] PLAN ...`: run plans, say what they found, write their reports; the exit status that follows."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from runner.arguments import count, count_or_auto, shard
from runner.cli.common import ArgumentParser, add_target_arguments, add_variable_arguments, check_profile, read_plans
from runner.console import Console, Output
from runner.environment import Environment
from runner.errors import ReportError, UsageError
from runner.net.address import hostport
from runner.results import CaseResult, PlanResult, RunResult
from runner.status import ExitStatus, after_reports

if TYPE_CHECKING:
    from collections.abc import Callable

    from runner.report.jsonout import JsonStream
    from runner.run.execute import RunOptions
    from runner.run.request import RunRequest
    from runner.tools.server import EmbeddedServer

__all__ = ["HELP", "main", "print_help"]

HELP = "run plans (the default command)"
OTHER_COMMANDS = """other commands (each with its own --help):
  smtprun validate PLAN ...   check plans without sending anything
  smtprun serve               run the embedded SMTP server
  smtprun record HOST[:PORT]  an interactive SMTP session, written down as a plan
  smtprun check PLAN          a Monitoring Plugins (Nagios, Icinga) check: one status line, exit 0-3
  smtprun exporter --plans D  a Prometheus exporter: GET /probe?plan=NAME runs a plan
  smtprun merge RESULT.json   join the --json results of shards or machines into one report
  smtprun audit DOMAIN        a mail domain's MX hosts and SPF, DMARC and MTA-STS (plans/audit.yaml)
  smtprun --version"""
RUN_PARSER = {"prog": "smtprun run", "usage": "smtprun [run] PLAN|FOLDER ... [options]", "epilog": OTHER_COMMANDS,
              "description": "Run SMTP test plans written in YAML: `smtprun PLAN` is `smtprun run PLAN`.",
              "formatter_class": argparse.RawDescriptionHelpFormatter}


def add_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("plans", nargs="+", metavar="PLAN", help="plan files (YAML), or folders of them")
    add_target_arguments(run)
    add_variable_arguments(run, "set a plan variable (repeatable)",
                            "set a variable whose value is redacted in every output (repeatable)")
    run.add_argument("-j", "--jobs", type=count, default=20, metavar="N", help="sessions in flight (default 20)")
    run.add_argument("--per-host", type=count, metavar="N", help="sessions to one server at once (default 4; "
                     "with --repeat, --jobs)")
    run.add_argument("--repeat", type=count, default=1, metavar="N",
                     help="load mode: run each case N times (with --jobs in flight) and report throughput and latency")
    run.add_argument("--workers", type=count_or_auto, default=None, metavar="N|auto",
                     help="load mode: share each case's sessions (and --jobs, --per-host) among N processes "
                          "(default auto: one per CPU from 2,000 sessions of a case, else 1)")
    run.add_argument("-v", "--verbose", action="store_true", help="print the live transcript (C: / S: lines)")
    run.add_argument("--json", metavar="FILE", help="write the results as JSON ('-' for stdout)")
    run.add_argument("--junit", metavar="FILE", help="write the results as JUnit XML")
    run.add_argument("--report-dir", default="reports", metavar="DIR", help="where HTML reports go (default reports/)")
    run.add_argument("--no-report", action="store_true", help="write no HTML report")
    run.add_argument("--embedded", action="store_true",
                     help="start the embedded server on a free loopback port and run the plans against it")
    run.add_argument("--profile", help="the embedded server's profile (with --embedded; default: default)")
    run.add_argument("--targets", metavar="FILE",
                     help="run every case against each target in FILE (host[:port], [IPv6]:port or mx:domain "
                          "per line; or CSV with a header row, its other columns the target's variables)")
    run.add_argument("--shard", type=shard, metavar="K/N",
                     help="run only share K of N of the cases (stable across machines; merge the --json results)")


def main(argv: list[str], env: Environment) -> int:
    parser = ArgumentParser(**RUN_PARSER)  # type: ignore[arg-type]
    add_arguments(parser)
    return _run(parser.parse_args(argv), env)


def _run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    from runner.run.execute import run_plans

    stdout = Output(env.stdout)
    console = _run_console(args, env, stdout)
    _check_embedded(args)
    targets = _read_targets(args)
    columns = {name: "" for t in targets[:1] for name in t.vars}  # the CSV's columns are variables the plans know
    plans = read_plans(args.plans, args, env, console, columns)
    _check_outputs(args)
    request = _request(args, plans, tuple(targets))
    request.check()
    stream = _json_stream(args)
    options = request.options(on_case=_on_case(args, console, stream), on_start=stdout.on_close.append,
                              listener=console.live if args.verbose else None)  # on_start: reader gone, stop
    console.label_cases = bool(args.verbose) and _label_cases(plans, options.jobs, len(targets))
    server = _start_embedded(args.profile or "default", options, console) if args.embedded else None
    try:
        run = run_plans(plans, options)
    except BaseException:
        if server is not None:
            server.stop()
        raise
    if args.shard and not any(plan.cases for plan in run.plans):
        k, n = args.shard
        console.error(f"smtprun: shard {k}/{n} holds none of the cases, so nothing ran "
                      "(with fewer cases than shards, some shares are empty)")
    with _interrupt_deferred() as interrupted:  # the results exist: report them all, then honour Ctrl-C
        if server is not None:
            server.stop()
        status = _conclude(run, args, stdout, console, stream)
    if stdout.closed_by_reader:
        return ExitStatus.OUTPUT_CLOSED
    if interrupted and status != ExitStatus.INTERRUPTED:
        console.error("smtprun: interrupted after the results were written")
        return ExitStatus.INTERRUPTED
    return status


def _read_targets(args: argparse.Namespace) -> list:
    if args.targets is None:
        return []
    if args.host or args.embedded:
        raise UsageError(f"--targets names the hosts: it cannot go with {'--host' if args.host else '--embedded'}")
    from runner.plan.targets import read_targets

    return read_targets(args.targets)


def _run_console(args: argparse.Namespace, env: Environment, stdout: Output) -> Console:
    """The console for `run`: on standard error when standard output carries the JSON or XML."""
    for flag, value in (("--json", args.json), ("--junit", args.junit), ("--report-dir", args.report_dir)):
        if value is not None and not value.strip():
            raise UsageError(f"{flag} needs a file name")
    if "-" not in (args.json, args.junit):
        return Console(stdout, env.stderr, env.colour)  # type: ignore[arg-type]
    if args.json == args.junit:
        raise UsageError("--json - and --junit - cannot both write to standard output")
    return Console(env.stderr, env.stderr, env.colour)


def _check_embedded(args: argparse.Namespace) -> None:
    """Options that would be silently ignored: the embedded server's, without it; a target, with it."""
    if args.profile is not None and not args.embedded:
        raise UsageError("--profile chooses the embedded server's answers: give it with --embedded "
                         "(or run `smtprun serve --profile ...`)")
    if args.embedded:
        given = [flag for flag, value in (("--host", args.host), ("--port", args.port)) if value]
        if given:
            raise UsageError(f"{' and '.join(given)} cannot be given with --embedded: it runs the plans "
                             "against the embedded server on a free loopback port")
        check_profile(args.profile or "default")


def _check_outputs(args: argparse.Namespace) -> None:
    from runner.report.outputs import check_outputs

    check_outputs(args.json, args.junit, None if args.no_report else args.report_dir)


def _request(args: argparse.Namespace, plans: list, targets: tuple) -> RunRequest:
    from runner.run.request import RunRequest

    host, host_port_given = args.host or (None, None)
    return RunRequest(plans, host=host, port=args.port or host_port_given, source=args.source,
                      families=args.families or (), reply_timeout=args.timeout, session_timeout=args.session_timeout,
                      nameservers=tuple(args.nameserver), secrets=dict(args.secret), jobs=args.jobs,
                      per_host=args.per_host, repeat=args.repeat, targets=targets, shard=args.shard,
                      workers=args.workers,
                      embedded=args.embedded)


def _json_stream(args: argparse.Namespace) -> JsonStream | None:
    if not args.json:
        return None
    from runner.report.jsonout import JsonStream

    return JsonStream(args.json)


def _on_case(args: argparse.Namespace, console: Console,
             stream: JsonStream | None) -> Callable[[PlanResult, CaseResult], None]:
    """What happens as each case ends: its line on the console, its JSON on disk, and then (in a large
    plan) what no report will show of it let go. JUnit XML shows every case's transcript: with --junit
    everything is kept."""
    hooks: list[Callable[[PlanResult, CaseResult], None]] = [console.case_done]
    if stream is not None:
        hooks.append(stream.add)
    if not args.junit:
        from runner.report.digest import Shedder

        hooks.append(Shedder(report=not args.no_report))

    def on_case(plan: PlanResult, case: CaseResult) -> None:
        for hook in hooks:
            hook(plan, case)

    return on_case


def _label_cases(plans: list, jobs: int, targets: int) -> bool:
    """-v: sessions in flight together keep running together; each line then names its case. Each plan runs
    once per --targets row, and with `target.all` once per MX host (how many is known only after the lookup)."""
    at_once = max(1, targets) * sum(1 if p.sequential else len(p.cases) * (2 if p.target.mx and p.target.all_mx
                                                                           else 1) for p in plans)
    return jobs > 1 and at_once > 1


def _start_embedded(profile: str, options: RunOptions, console: Console) -> EmbeddedServer:
    """`--embedded`: the embedded server on a free loopback port, and the run pointed at it."""
    from runner.tools.server import EmbeddedServer

    check_profile(profile)
    server = EmbeddedServer(profile=profile).start()
    options.host, options.port = server.host, server.port
    console.out.write(f"embedded server ({profile}) on {hostport(server.host, server.port)}\n")
    return server


def _conclude(run: RunResult, args: argparse.Namespace, stdout: TextIO, console: Console,
              stream: JsonStream | None = None) -> ExitStatus:
    """Say what the run found, write its reports, and the exit status that follows."""
    for error in run.errors:
        console.error(f"smtprun: {error}")
    console.summary(run)
    status = ExitStatus.INTERRUPTED if run.interrupted else (
        ExitStatus.FAILED if run.status == "failed" else ExitStatus.OK)
    return _write_reports(run, args, stdout, console, status, stream)


@contextlib.contextmanager
def _interrupt_deferred() -> Iterator[list[int]]:
    """Hold Ctrl-C (SIGINT) until the block ends; the list it yields is non-empty when one came."""
    import signal
    import threading

    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield got
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_reports(run: RunResult, args: argparse.Namespace, stdout: TextIO, console: Console,
                   status: ExitStatus, stream: JsonStream | None = None) -> ExitStatus:
    """Every requested output is attempted; a failure to write one is reported and not fatal to the rest.
    The JSON, streamed as the cases ended (`stream`), is finished here."""
    written = [_write_output(kind, run, target, stdout, console, stream)
               for kind, target in (("JSON", args.json), ("JUnit", args.junit)) if target]
    if not args.no_report:
        written.append(_write_html(run, args.report_dir, console))
    return after_reports(status, all(written))


def _write_output(kind: str, run: RunResult, target: str, stdout: TextIO, console: Console,
                  stream: JsonStream | None = None) -> bool:
    """`--json` or `--junit`: to the file, or to stdout for "-"; False when it could not be written."""
    if kind == "JSON" and stream is not None:
        write = stream.write
    elif kind == "JSON":
        from runner.report.jsonout import write_json as write
    else:
        from runner.report.junit import write_junit as write
    path = Path(target) if target != "-" else "-"
    try:
        write(run, path, out=stdout)
    except ReportError as exc:  # it names the file and the reason itself
        console.error(f"smtprun: {exc}")
        return False
    except OSError as exc:
        console.error(f"smtprun: cannot write {kind} to {path}: {exc.strerror or exc}")
        return False
    return True


def _write_html(run: RunResult, report_dir: str, console: Console) -> bool:
    from runner.report.html import write_html_reports

    try:
        paths = write_html_reports(run, Path(report_dir), on_warning=lambda w: console.error(f"smtprun: warning: {w}"))
        for path in paths:
            console.out.write(f"report: {path}\n")
    except ReportError as exc:  # it names the folder and the reason itself
        console.error(f"smtprun: {exc}")
        return False
    except OSError as exc:
        console.error(f"smtprun: cannot write the HTML report in {report_dir}: {exc.strerror or exc}")
        return False
    return True


def print_help(out: TextIO) -> None:
    """`smtprun --help`: the main form, `smtprun PLAN`, with its options; the other commands after them."""
    parser = ArgumentParser(**RUN_PARSER)  # type: ignore[arg-type]
    add_arguments(parser)
    parser.print_help(out)
