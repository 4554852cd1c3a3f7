"""`smtprun check PLAN`: a plan as a Monitoring Plugins check (Nagios, Icinga, Naemon, Sensu).

One status line, performance data after `|`, the failing steps on the lines after it, and the
plugins' exit statuses: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (Monitoring Plugins Development
Guidelines, "Plugin Return Codes"). A plan that cannot be used, a wrong option or a defect in smtprun
is UNKNOWN, never CRITICAL: the server was not judged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable, Sequence
from typing import TextIO

from runner import __version__
from runner.arguments import ArgumentParser, host_port, name_value, nameserver, seconds, source_address, tcp_port
from runner.environment import Environment
from runner.errors import PlanError, SmtprunError
from runner.results import FAILED, PASSED, CaseResult, RunResult
from runner.status import CheckStatus
from runner.text import CONTROLS, printable
from runner.tools.thresholds import Range, perfdata

__all__ = ["CheckStatus", "main"]

DEFAULT_TIMEOUT = 10.0  # the plugins' usual -t default: a check never outlives its scheduler's patience
MAX_LONG_LINES = 40  # long output: enough to find the failure, not a transcript


def _range(text: str) -> Range:
    try:
        return Range.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", metavar="PLAN", help="the plan file (YAML)")
    parser.add_argument("-H", "--host", type=host_port, help="connect here instead of the plan's target")
    parser.add_argument("-p", "--port", type=tcp_port, help="connect to this port instead of the plan's")
    parser.add_argument("-S", "--source", type=source_address, metavar="ADDRESS",
                        help="connect from this local IP address instead of the plan's target.source")
    parser.add_argument("-t", "--timeout", type=seconds, default=DEFAULT_TIMEOUT,
                        help=f"seconds the whole check may take (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("-w", "--warning", type=_range, metavar="RANGE",
                        help="WARNING when the run time in seconds is outside RANGE (e.g. 1, ~:1, @0:0.1)")
    parser.add_argument("-c", "--critical", type=_range, metavar="RANGE",
                        help="CRITICAL when the run time in seconds is outside RANGE")
    parser.add_argument("--cert-warning", type=_range, default=Range.parse("30:"), metavar="RANGE",
                        help="WARNING when the certificate's days left are outside RANGE (default 30:)")
    parser.add_argument("--cert-critical", type=_range, default=Range.parse("7:"), metavar="RANGE",
                        help="CRITICAL when the certificate's days left are outside RANGE (default 7:)")
    parser.add_argument("--nameserver", action="append", type=nameserver, default=[], metavar="IP[:PORT]",
                        help="DNS server for MX lookups (repeatable)")
    parser.add_argument("--var", action="append", type=name_value, default=[], metavar="NAME=VALUE",
                        help="set a plan variable (repeatable)")
    parser.add_argument("--secret", action="append", type=name_value, default=[], metavar="NAME=VALUE",
                        help="set a variable whose value is redacted in the output (repeatable)")


def _one_line(text: object) -> str:
    """Text for the status line: printable, no `|` (it starts the performance data), no line breaks."""
    return printable(str(text), CONTROLS).replace("|", "/").replace("\n", " ")


def _failure_lines(case: CaseResult, file: str) -> list[str]:
    step = case.failed_step
    if step is None:
        return [f"{case.name}: {case.reason or 'failed'}"]
    lines = [f"{case.name}: step {step.index} at {step.file or file}:{step.line}: {step.label}"]
    if step.expected:
        lines.append(f"  expected: {step.expected}")
    if step.reply is not None:
        lines += [f"  got: {step.reply.code} {text}".rstrip() for text in step.reply.lines]
    lines.append(f"  why: {step.reason}")
    return lines


def _verdict(run: RunResult, args: argparse.Namespace) -> tuple[CheckStatus, str, list[str], list[str]]:
    """The status, the status line's text after the dash, its performance data, the long output."""
    cases = [c for p in run.plans for c in p.cases]
    steps = [s for c in cases for s in c.steps]
    passed = sum(s.status == PASSED for s in steps)
    elapsed = round(run.duration, 3)
    text = f"{passed}/{len(steps)} steps in {elapsed:.2f}s"
    perf = [perfdata("time", elapsed, "s", args.warning, args.critical, 0)]
    earliest, which, cert_perf = _certificates(cases, args)
    failed = [(c, p.file) for p in run.plans for c in p.cases if c.status == FAILED]
    perf += cert_perf
    latencies = [s.details["latency"] for s in steps
                 if s.details and isinstance(s.details.get("latency"), (int, float))]
    if latencies:  # expect_delivery: the slowest message, server's 250 to the mailbox
        perf.append(perfdata("delivery", round(max(latencies), 3), "s", None, None, 0))
    long_lines = [line for case, file in failed for line in _failure_lines(case, file)]
    long_lines += [f"internal error: {e}" for e in run.errors]
    if failed or run.errors:
        first = failed[0][0] if failed else None
        why = f"{first.name}: {first.reason}" if first is not None else run.errors[0]
        return CheckStatus.CRITICAL, f"{text}: {why}", perf, long_lines
    status, notes = CheckStatus.OK, []
    for value, warning, critical, what in ((elapsed, args.warning, args.critical, "run time {}s"),
                                           (earliest, args.cert_warning, args.cert_critical,
                                            which + " expires in {} days")):
        if value is None:
            continue
        if critical is not None and critical.alerts(value):
            status = CheckStatus.CRITICAL
            notes.append(what.format(value) + f" (critical {critical})")
        elif warning is not None and warning.alerts(value):
            status = max(status, CheckStatus.WARNING)
            notes.append(what.format(value) + f" (warning {warning})")
    return status, text + (": " + ", ".join(notes) if notes else ""), perf, long_lines


def _certificates(cases: list[CaseResult], args: argparse.Namespace) -> tuple[int | None, str, list[str]]:
    """The earliest days left of any certificate a server sent, which one that is, and the performance data:
    `cert_days` (the earliest) and, as check_ssl_cert gives them, `days_chain_elem1`... per element of the chain
    (the server's own first), named after the case when several cases made a TLS session."""
    sessions = [c for c in cases if c.tls and isinstance(c.tls.get("days_left"), int)]
    perf, found = [], []  # found: (days, words for the status line)
    for case in sessions:
        chain = [e for e in case.tls.get("chain") or () if isinstance(e, dict) and isinstance(e.get("days_left"), int)]
        found.append((case.tls["days_left"], "certificate"))
        for position, element in enumerate(chain, 1):
            label = f"days_chain_elem{position}" if len(sessions) == 1 else f"{case.name} days_chain_elem{position}"
            perf.append(perfdata(label, element["days_left"], "", args.cert_warning, args.cert_critical))
            if position > 1:
                found.append((element["days_left"], f"certificate {position} of the chain ({element.get('subject')})"))
    if not found:
        return None, "certificate", []
    days, which = min(found, key=lambda item: item[0])  # the server's own first among equals
    return days, which, [perfdata("cert_days", days, "", args.cert_warning, args.cert_critical), *perf]


def _read(args: argparse.Namespace, env: Environment):
    """The plan, validated as `smtprun PLAN` would: a --var or --secret it does not read is refused, and
    no excerpt of the file shows a --secret value."""
    if os.path.isdir(args.plan):  # one plan: read_plan says a folder is not a plan file
        from runner.plan import read_plan
        from runner.plan.schema import ValidationCache

        return read_plan(args.plan, dict(args.var) | dict(args.secret), ValidationCache.under(env.cache_dir),
                         [value for _, value in args.secret])
    from runner.run.request import read_request_plans

    (plan,) = read_request_plans([args.plan], args.var, args.secret, env.cache_dir)
    return plan


def _run(args: argparse.Namespace, env: Environment) -> tuple[CheckStatus, str, list[str], list[str]]:
    from runner.run.execute import run_plans
    from runner.run.request import RunRequest

    plan = _read(args, env)
    host, port_given = args.host or (None, None)
    # -t bounds the whole check (sequential cases included); one reply never waits longer than the plan says
    request = RunRequest([plan], host=host, port=args.port or port_given, source=args.source,
                         reply_timeout=min(plan.target.timeout, args.timeout), session_timeout=args.timeout,
                         nameservers=tuple(args.nameserver), secrets=dict(args.secret), host_options="--host")
    request.check()  # this machine's setup, not the server's fault: UNKNOWN, never CRITICAL
    timed_out: list[bool] = []

    def deadline(stop: Callable[[], None]) -> None:
        def expire() -> None:
            timed_out.append(True)
            stop()
        asyncio.get_running_loop().call_later(args.timeout, expire)

    run = run_plans([plan], request.options(on_start=deadline))
    if timed_out:
        return _timed_out(run, args)
    return _verdict(run, args)


def _timed_out(run: RunResult, args: argparse.Namespace) -> tuple[CheckStatus, str, list[str], list[str]]:
    """CRITICAL, as check_smtp says when its -t runs out, with what ran by then."""
    _, text, perf, long = _verdict(run, args)
    steps = text.split(":", 1)[0]
    return CheckStatus.CRITICAL, f"{steps}: timed out after {args.timeout:g}s (-t)", perf, long


def _write(out: TextIO, status: CheckStatus, text: str, perf: Sequence[str] = (), long: Sequence[str] = ()) -> None:
    head = f"SMTP {status.name} - {_one_line(text)}"
    out.write(head + (" | " + " ".join(perf) if perf else "") + "\n")
    shown = [printable(line, CONTROLS) for line in long[:MAX_LONG_LINES]]
    if len(long) > MAX_LONG_LINES:
        shown.append(f"... {len(long) - MAX_LONG_LINES} more lines")
    out.write("".join(line + "\n" for line in shown))
    out.flush()


def main(argv: Sequence[str], env: Environment) -> int:
    """`smtprun check ARGV`: every outcome is one of the four statuses, with its line on standard output."""
    parser = ArgumentParser(prog="smtprun check", description="Run a plan as a Monitoring Plugins (Nagios) check.")
    parser.add_argument("--version", action="version", version=f"smtprun {__version__}")
    add_arguments(parser)
    try:
        args = parser.parse_args(list(argv))
        status, text, perf, long = _run(args, env)
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    except PlanError as exc:
        first, *rest = str(exc).splitlines()
        _write(env.stdout, CheckStatus.UNKNOWN, first, long=rest)
        return int(CheckStatus.UNKNOWN)
    except SmtprunError as exc:
        text = str(exc).removeprefix("smtprun check: ").removeprefix("smtprun: ")
        first, *rest = text.splitlines() or [""]
        _write(env.stdout, CheckStatus.UNKNOWN, first, long=[line.removeprefix("smtprun: ") for line in rest])
        return int(CheckStatus.UNKNOWN)
    except KeyboardInterrupt:
        _write(env.stdout, CheckStatus.UNKNOWN, "interrupted")
        return int(CheckStatus.UNKNOWN)
    except Exception as exc:  # a defect in smtprun: the plugin contract still holds
        _write(env.stdout, CheckStatus.UNKNOWN, f"internal error: {type(exc).__name__}: {exc}")
        return int(CheckStatus.UNKNOWN)
    _write(env.stdout, status, text, perf, long)
    return int(status)
