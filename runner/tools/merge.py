"""`smtprun merge RESULT.json...`: the --json results of shards or machines joined into one run.

Every file is read and checked before anything is written: one smtprun version, no shard twice,
shards of one split, no case in two files. Only then are the HTML report (and its index entry),
the JUnit XML and the JSON written, each atomically, so a bad input leaves the report folder as it was.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from runner.arguments import ArgumentParser
from runner.environment import Environment
from runner.errors import ReportError, UsageError
from runner.report.restore import read_result
from runner.results import PlanResult, RunResult
from runner.status import ExitStatus

__all__ = ["main", "merge_runs"]


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="smtprun merge",
                     description="Join the --json results of shards or machines into one report.")
    parser.add_argument("results", nargs="+", metavar="RESULT.json", help="results written by `smtprun --json`")
    parser.add_argument("--report-dir", default="reports", metavar="DIR", help="where the HTML report goes")
    parser.add_argument("--no-report", action="store_true", help="write no HTML report")
    parser.add_argument("--json", metavar="FILE", help="write the merged results as JSON")
    parser.add_argument("--junit", metavar="FILE", help="write the merged results as JUnit XML")
    return parser


def _check_outputs(args: argparse.Namespace) -> None:
    from runner.report.outputs import check_outputs

    check_outputs(args.json, args.junit, None if args.no_report else args.report_dir)


def _check_versions(runs: list[tuple[str, RunResult]]) -> None:
    versions = {run.version: name for name, run in runs}
    if len(versions) > 1:
        listed = ", ".join(f"{name} from smtprun {version}" for version, name in versions.items())
        raise UsageError(f"results from different smtprun versions cannot be merged: {listed}")


def _check_shards(runs: list[tuple[str, RunResult]]) -> list[str]:
    """Errors for a shard given twice or shards of different splits; a warning for missing shards."""
    seen: dict[tuple[int, int], str] = {}
    for name, run in runs:
        if run.shard is None:
            continue
        if run.shard in seen:
            k, n = run.shard
            raise UsageError(f"{seen[run.shard]} and {name} are both shard {k}/{n}: give each shard once")
        seen[run.shard] = name
    totals = {n: name for (_, n), name in seen.items()}
    if len(totals) > 1:
        raise UsageError("shards of different splits: " +
                         ", ".join(f"{name} is one of {n}" for n, name in sorted(totals.items())))
    if not totals:
        return []
    (total,) = totals
    missing = [k for k in range(1, total + 1) if (k, total) not in seen]
    return [f"warning: shard{'s' * (len(missing) > 1)} {', '.join(f'{k}/{total}' for k in missing)} "
            f"not given: the report covers {total - len(missing)} of {total} shards"] if missing else []


def merge_runs(runs: list[tuple[str, RunResult]]) -> RunResult:
    """One run holding every plan's cases from all `runs` (name, run); a case in two of them is an error."""
    plans: dict[tuple[str, str], PlanResult] = {}
    owner: dict[tuple[str, str, str], str] = {}
    for name, run in runs:
        for plan in run.plans:
            key = (plan.name, plan.file)
            merged = plans.setdefault(key, PlanResult(plan.name, plan.file, plan.source, plan.target,
                                                      dns_seconds=plan.dns_seconds))
            merged.notes.extend(n for n in plan.notes if n not in merged.notes)
            for case in plan.cases:
                where = (*key, case.name)
                if where in owner:
                    raise UsageError(f"case {case.name!r} of {plan.file} is in both {owner[where]} and {name}: "
                                     "were they run with the same --shard, or without one?")
                owner[where] = name
                merged.cases.append(case)
    for merged in plans.values():  # shards hold interleaved shares: back in the plan's (and target list's) order
        if all(c.position is not None for c in merged.cases):
            merged.cases.sort(key=lambda c: c.position or 0)
    start = min(run.started_at for _, run in runs)
    end = max(run.started_at + timedelta(seconds=run.duration) for _, run in runs)
    return RunResult(version=runs[0][1].version, started_at=start, plans=list(plans.values()),
                     duration=(end - start).total_seconds(), interrupted=any(r.interrupted for _, r in runs),
                     errors=[e for _, r in runs for e in r.errors])


def _write(run: RunResult, args: argparse.Namespace, env: Environment) -> None:
    from runner.report.jsonout import write_json
    from runner.report.junit import write_junit

    if args.json:
        write_json(run, Path(args.json))
        env.stdout.write(f"json: {args.json}\n")
    if args.junit:
        try:
            write_junit(run, Path(args.junit))
        except OSError as exc:
            raise ReportError(f"cannot write JUnit to {args.junit}: {exc.strerror or exc}") from exc
        env.stdout.write(f"junit: {args.junit}\n")
    if not args.no_report:
        from runner.report.html import write_html_reports

        for path in write_html_reports(run, Path(args.report_dir),
                                       on_warning=lambda w: env.stderr.write(f"smtprun merge: warning: {w}\n")):
            env.stdout.write(f"report: {path}\n")


def main(argv: Sequence[str], env: Environment) -> int:
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    except UsageError as exc:  # the parser's words, which name the program
        env.stderr.write(f"{exc}\n")
        return int(ExitStatus.USAGE)
    try:
        runs = _read(args.results)
        _check_outputs(args)
        _check_versions(runs)
        for warning in _check_shards(runs):
            env.stderr.write(f"smtprun merge: {warning}\n")
        run = merge_runs(runs)
        _write(run, args, env)
    except UsageError as exc:
        env.stderr.write("".join(f"smtprun merge: {line}\n" for line in str(exc).splitlines()))
        env.stderr.write("smtprun merge: nothing was written\n")
        return int(ExitStatus.USAGE)
    except ReportError as exc:
        env.stderr.write(f"smtprun merge: {exc}\n")
        return int(ExitStatus.ERROR)
    counts = run.counts()
    env.stdout.write(f"merged {len(runs)} results (smtprun {run.version}): "
                     f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped\n")
    return int(ExitStatus.FAILED if run.status == "failed" else ExitStatus.OK)


def _read(names: list[str]) -> list[tuple[str, RunResult]]:
    """Every result file read: a UsageError naming each one that cannot be."""
    problems, runs = [], []
    for name in names:
        try:
            runs.append((name, read_result(Path(name))))
        except ReportError as exc:
            problems.append(str(exc))
    if problems:
        raise UsageError("\n".join(problems))
    return runs
