"""The command line: arguments in, one call into the program, an ExitStatus out.

`program()` is the main program without error handling; `main()` maps every SmtprunError to its
exit status and message, so no user ever sees a traceback for something they did.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from runner import __version__
from runner.arguments import (
    count,
    host_port,
    name_value,
    nameserver,
    seconds,
    secret_value,
    shard,
    source_address,
    tcp_port,
)
from runner.console import Console, Output
from runner.environment import Environment
from runner.errors import PlanError, ReportError, SmtprunError, UsageError
from runner.net.address import hostport
from runner.results import RunResult
from runner.status import ExitStatus, after_reports

if TYPE_CHECKING:
    from runner.run.execute import RunOptions
    from runner.run.request import RunRequest
    from runner.tools.server import EmbeddedServer

__all__ = ["main", "name_value", "program", "tcp_port"]

COMMANDS = ("run", "validate", "serve", "record", "check", "exporter", "merge")
OTHER_COMMANDS = """other commands (each with its own --help):
  smtprun validate PLAN ...   check plans without sending anything
  smtprun serve               run the embedded SMTP server
  smtprun record HOST[:PORT]  an interactive SMTP session, written down as a plan
  smtprun check PLAN          a Monitoring Plugins (Nagios, Icinga) check: one status line, exit 0-3
  smtprun exporter --plans D  a Prometheus exporter: GET /probe?plan=NAME runs a plan
  smtprun merge RESULT.json   join the --json results of shards or machines into one report
  smtprun --version"""
RUN_PARSER = {"prog": "smtprun run", "usage": "smtprun [run] PLAN|FOLDER ... [options]", "epilog": OTHER_COMMANDS,
              "description": "Run SMTP test plans written in YAML: `smtprun PLAN` is `smtprun run PLAN`.",
              "formatter_class": argparse.RawDescriptionHelpFormatter}
# Commands with their own parser and exit statuses (a monitoring check's 0-3), given the rest of argv.
TOOLS = {"check": "a Monitoring Plugins (Nagios, Icinga) check: one status line, exit 0-3",
         "exporter": "a Prometheus exporter: GET /probe?plan=NAME runs a plan",
         "merge": "join the --json results of shards or machines into one report"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="smtprun", description="Run SMTP test plans written in YAML.")
    parser.add_argument("--version", action="version", version=f"smtprun {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    _add_run_arguments(sub.add_parser("run", help="run plans (the default command)", **RUN_PARSER))
    _add_validate_arguments(sub.add_parser("validate", help="check plans without sending anything"))
    _add_serve_arguments(sub.add_parser("serve", help="run the embedded SMTP server"))
    rec = sub.add_parser("record", help="an interactive SMTP session, written down as a plan")
    if command == "record":  # its module is only imported when it is used
        from runner.tools import record

        record.add_arguments(rec)
    for name, text in TOOLS.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def _add_run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("plans", nargs="+", metavar="PLAN", help="plan files (YAML), or folders of them")
    _add_target_arguments(run)
    _add_variable_arguments(run, "set a plan variable (repeatable)",
                            "set a variable whose value is redacted in every output (repeatable)")
    run.add_argument("-j", "--jobs", type=count, default=20, metavar="N", help="sessions in flight (default 20)")
    run.add_argument("--per-host", type=count, metavar="N", help="sessions to one server at once (default 4; "
                     "with --repeat, --jobs)")
    run.add_argument("--repeat", type=count, default=1, metavar="N",
                     help="load mode: run each case N times (with --jobs in flight) and report throughput and latency")
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


def _add_target_arguments(run: argparse.ArgumentParser) -> None:
    """Where and how long `run` connects, instead of what the plans say."""
    run.add_argument("--host", type=host_port, metavar="HOST[:PORT]",
                     help="connect here instead of the plan's target (HOST, HOST:PORT, [IPv6]:PORT)")
    run.add_argument("--port", type=tcp_port, help="connect to this port instead of the plan's")
    run.add_argument("--source", type=source_address, metavar="ADDRESS",
                     help="connect from this local IP address (IPv4 or IPv6, no port) instead of the plan's "
                          "target.source or the system's choice")
    run.add_argument("--timeout", type=seconds, metavar="S",
                     help="seconds to wait for each reply, instead of the plans' target.timeout "
                          "(a case's or step's own timeout still applies)")
    run.add_argument("--session-timeout", type=seconds, metavar="S", help="seconds a whole case may take")
    run.add_argument("--nameserver", action="append", type=nameserver, default=[], metavar="IP[:PORT]",
                     help="DNS server for MX lookups and DNS checks (repeatable; default: the plan's, or the system)")
    family = run.add_mutually_exclusive_group()
    family.add_argument("-4", "--ipv4", action="store_const", const=("ipv4",), dest="families",
                        help="connect to IPv4 addresses of MX hosts only")
    family.add_argument("-6", "--ipv6", action="store_const", const=("ipv6",), dest="families",
                        help="connect to IPv6 addresses of MX hosts only")


def _add_variable_arguments(parser: argparse.ArgumentParser, var_help: str, secret_help: str) -> None:
    parser.add_argument("--var", action="append", type=name_value, default=[], metavar="NAME=VALUE", help=var_help)
    parser.add_argument("--secret", action="append", type=secret_value, default=[], metavar="NAME=VALUE",
                        help=secret_help)


def _add_validate_arguments(val: argparse.ArgumentParser) -> None:
    val.add_argument("plans", nargs="+", metavar="PLAN", help="plan files (YAML), or folders of them")
    _add_variable_arguments(val, "a variable the plan expects from the command line (repeatable)",
                            "a secret variable (repeatable)")


def _add_serve_arguments(srv: argparse.ArgumentParser) -> None:
    srv.add_argument("--host", default="127.0.0.1",
                     help="the address to listen on (default 127.0.0.1, loopback only)")
    srv.add_argument("--port", type=tcp_port, default=2525, help="the port to listen on (default 2525)")
    srv.add_argument("--profile", default="default", help="answer like: default, exchange, postfix, strict")
    srv.add_argument("--tls-cert", metavar="PEM", help="certificate for STARTTLS (or implicit TLS)")
    srv.add_argument("--tls-key", metavar="PEM", help="private key for --tls-cert")
    srv.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (port 465 style)")
    srv.add_argument("--auth-user", help="accept AUTH PLAIN/LOGIN/CRAM-MD5 for this user")
    srv.add_argument("--auth-password", help="the password for --auth-user")


def _record(args: argparse.Namespace, env: Environment, console: Console) -> ExitStatus:
    from runner.tools import record

    return ExitStatus(record.run(args, console.out, console.err, env.stdin))


def _read_plans(paths: Sequence[str], args: argparse.Namespace, env: Environment, console: Console,
                columns: dict[str, str] | None = None) -> list:
    """Every plan, validated, with --var and --secret (and a --targets CSV's columns) over their variables.
    What validation warns of is printed, compiler-style, before anything else."""
    from runner.run.request import read_request_plans

    return read_request_plans(paths, args.var, args.secret, env.cache_dir, columns, console.error)


def _validate(args: argparse.Namespace, env: Environment, console: Console) -> ExitStatus:
    plans = _read_plans(args.plans, args, env, console)
    for plan in plans:
        console.out.write(f"{plan.file}: ok ({len(plan.cases)} case{'s' * (len(plan.cases) != 1)})\n")
    return ExitStatus.OK


def _check_profile(name: str) -> None:
    from runner.tools.profiles import PROFILES

    if name not in PROFILES:
        raise UsageError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")


def _serve(args: argparse.Namespace, env: Environment, console: Console) -> ExitStatus:
    from runner.tools.server import serve

    _check_profile(args.profile)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if bool(args.auth_user) != bool(args.auth_password):
        raise UsageError("--auth-user and --auth-password go together")
    if args.implicit_tls and not args.tls_cert:
        raise UsageError("--implicit-tls needs --tls-cert and --tls-key")
    serve(args.host, args.port, args.profile, tls_cert=args.tls_cert, tls_key=args.tls_key,
          implicit_tls=args.implicit_tls, auth_user=args.auth_user, auth_password=args.auth_password, out=console.out)
    return ExitStatus.OK


def _run(args: argparse.Namespace, env: Environment, console: Console) -> ExitStatus:
    from runner.run.execute import run_plans

    stdout = Output(env.stdout)
    console = _run_console(args, env, stdout)
    _check_embedded(args)
    targets = _read_targets(args)
    columns = {name: "" for t in targets[:1] for name in t.vars}  # the CSV's columns are variables the plans know
    plans = _read_plans(args.plans, args, env, console, columns)
    _check_outputs(args)
    request = _request(args, plans, tuple(targets))
    request.check()
    options = request.options(on_case=console.case_done, on_start=stdout.on_close.append,  # reader gone: stop
                              listener=console.live if args.verbose else None)
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
        status = _conclude(run, args, stdout, console)
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
        _check_profile(args.profile or "default")


def _check_outputs(args: argparse.Namespace) -> None:
    from runner.report.files import check_outputs

    check_outputs(args.json, args.junit, None if args.no_report else args.report_dir)


def _request(args: argparse.Namespace, plans: list, targets: tuple) -> RunRequest:
    from runner.run.request import RunRequest

    host, host_port_given = args.host or (None, None)
    return RunRequest(plans, host=host, port=args.port or host_port_given, source=args.source,
                      families=args.families or (), reply_timeout=args.timeout, session_timeout=args.session_timeout,
                      nameservers=tuple(args.nameserver), secrets=dict(args.secret), jobs=args.jobs,
                      per_host=args.per_host, repeat=args.repeat, targets=targets, shard=args.shard,
                      embedded=args.embedded)


def _label_cases(plans: list, jobs: int, targets: int) -> bool:
    """-v: sessions in flight together keep running together; each line then names its case. Each plan runs
    once per --targets row, and with `target.all` once per MX host (how many is known only after the lookup)."""
    at_once = max(1, targets) * sum(1 if p.sequential else len(p.cases) * (2 if p.target.mx and p.target.all_mx
                                                                           else 1) for p in plans)
    return jobs > 1 and at_once > 1


def _start_embedded(profile: str, options: RunOptions, console: Console) -> EmbeddedServer:
    """`--embedded`: the embedded server on a free loopback port, and the run pointed at it."""
    from runner.tools.server import EmbeddedServer

    _check_profile(profile)
    server = EmbeddedServer(profile=profile).start()
    options.host, options.port = server.host, server.port
    console.out.write(f"embedded server ({profile}) on {hostport(server.host, server.port)}\n")
    return server


def _conclude(run: RunResult, args: argparse.Namespace, stdout: TextIO, console: Console) -> ExitStatus:
    """Say what the run found, write its reports, and the exit status that follows."""
    for error in run.errors:
        console.error(f"smtprun: {error}")
    console.summary(run)
    status = ExitStatus.INTERRUPTED if run.interrupted else (
        ExitStatus.FAILED if run.status == "failed" else ExitStatus.OK)
    return _write_reports(run, args, stdout, console, status)


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


def _write_reports(
    run: RunResult, args: argparse.Namespace, stdout: TextIO, console: Console, status: ExitStatus
) -> ExitStatus:
    """Every requested output is attempted; a failure to write one is reported and not fatal to the rest."""
    written = [_write_output(kind, run, target, stdout, console)
               for kind, target in (("JSON", args.json), ("JUnit", args.junit)) if target]
    if not args.no_report:
        written.append(_write_html(run, args.report_dir, console))
    return after_reports(status, all(written))


def _write_output(kind: str, run: RunResult, target: str, stdout: TextIO, console: Console) -> bool:
    """`--json` or `--junit`: to the file, or to stdout for "-"; False when it could not be written."""
    if kind == "JSON":
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


def _run_help(out: TextIO) -> None:
    """`smtprun --help`: the main form, `smtprun PLAN`, with its options; the other commands after them."""
    parser = _Parser(**RUN_PARSER)  # type: ignore[arg-type]
    _add_run_arguments(parser)
    parser.print_help(out)


def _tool(name: str, argv: list[str], env: Environment) -> int:
    if name == "check":
        from runner.tools import check as tool
    elif name == "exporter":
        from runner.tools import exporter as tool  # type: ignore[no-redef]
    else:
        from runner.tools import merge as tool  # type: ignore[no-redef]
    return tool.main(argv, env)


def program(argv: Sequence[str], env: Environment) -> ExitStatus | int:
    """The main program without error handling: its input, output and cache all come from env."""
    argv = list(argv)
    if argv and argv[0] not in (*COMMANDS, "-h", "--help", "--version"):
        import difflib
        import os

        close = difflib.get_close_matches(argv[0], COMMANDS, n=1, cutoff=0.75)
        if close and not os.path.exists(argv[0]):
            raise UsageError(f"smtprun: no command or plan file {argv[0]!r}; did you mean '{close[0]}'?")
        argv.insert(0, "run")  # `smtprun PLAN` means `smtprun run PLAN`
    if argv and argv[0] in TOOLS:
        return _tool(argv[0], argv[1:], env)
    console = Console(env.stdout, env.stderr, env.colour)
    if not argv or argv[0] in ("-h", "--help"):  # the main form first: `smtprun PLAN` and its options
        _run_help(console.out if argv else console.err)
        return ExitStatus.OK if argv else ExitStatus.USAGE
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    handler = {"run": _run, "validate": _validate, "serve": _serve, "record": _record}[args.command]
    return handler(args, env, console)


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    *,
    env: Environment | None = None,
) -> int:
    """Run the command line and return its exit status. out and err stand in for the standard
    streams; env, when given, for everything the process gives the program (out and err unused)."""
    env = env or Environment.from_os(stdout=out, stderr=err)
    console = Console(env.stdout, env.stderr, env.colour)
    try:
        return int(program(sys.argv[1:] if argv is None else argv, env))
    except PlanError as exc:
        console.error(str(exc))
        n = len(exc.problems)
        console.error(f"smtprun: {n} problem{'s' * (n != 1)} found; nothing was sent")
        return int(ExitStatus.USAGE)
    except UsageError as exc:
        message = str(exc)
        console.error(message if message.startswith("smtprun") else f"smtprun: {message}")
        return int(ExitStatus.USAGE)
    except SmtprunError as exc:
        console.error(f"smtprun: {exc}")
        return int(ExitStatus.ERROR)
    except KeyboardInterrupt:
        console.error("smtprun: interrupted")
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:  # `smtprun validate ... | head`: the reader left; say nothing more
        import os

        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), env.stdout.fileno())
        return int(ExitStatus.OUTPUT_CLOSED)
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
