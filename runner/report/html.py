"""One self-contained HTML page per plan per run, compared with the plan's previous report.

The page needs nothing but itself: CSS inline, collapsing done with <details>, and one small script
of its own (expand all / collapse all), the only one its Content-Security-Policy allows (by hash);
without scripts the page reads the same, a click per case. The run's data for the plan is embedded
as JSON so the index and later comparisons can read the report back.

This module builds the page and keeps the folder of reports; what each case shows is shaped in `view`.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import ReportError
from runner.report.advice import SERVERS
from runner.report.archive import (
    DATA_ID,
    FORMAT,
    SUMMARY_ID,
    ReportEntry,
    read_embedded,
    rebuild_index,
    report_stem,
    same_plan_key,
    scan_reports,
    write_new,
)
from runner.report.chart import PERCENTILES
from runner.report.digest import FULL_CASES, FULL_FAILURES, Digest, Views, digest, lighten, peers_line
from runner.report.format import format_seconds, format_utc, parse_utc, printable
from runner.report.markup import embed_json, environment, page_script
from runner.report.view import CaseView, case_view, skipped_groups, step_view, transcript_rows
from runner.results import FAILED, PlanResult, RunResult, utc_iso
from runner.stats import KEEP_FAILURES

if TYPE_CHECKING:
    from runner.report.compare import Changes

__all__ = ["plan_data", "render_report", "write_html_reports"]


def _run_fields(run: RunResult, plan: PlanResult) -> dict[str, Any]:
    """What the summary and the full data of a report both say about the run."""
    return {
        "format": FORMAT,
        "smtprun": run.version,
        "started_at": utc_iso(run.started_at),
        "duration": round(plan.duration, 6),  # the plan's wall time, as the index lists it
        "run_duration": round(run.duration, 6),
        "interrupted": run.interrupted,
        "counts": plan.counts(),
    }


def plan_summary(run: RunResult, plan: PlanResult) -> dict[str, Any]:
    """What the index lists for one report."""
    return {
        **_run_fields(run, plan),
        "errors": len(run.errors),
        "plan": {"name": plan.name, "file": plan.file, "target": plan.target, "status": plan.status},
    }


def plan_data(run: RunResult, plan: PlanResult) -> dict[str, Any]:
    """The machine-readable run for one plan, as embedded in its report (a large plan's lightened)."""
    return {**_run_fields(run, plan), "errors": list(run.errors), "status": plan.status,
            "plan": lighten(plan.to_dict())}


def _cases(plan: PlanResult) -> tuple[Digest | None, list[CaseView]]:
    """The cases shown whole: all of them, or in a large plan (a fleet) only those its digest keeps whole."""
    if len(plan.cases) <= FULL_CASES:
        return None, [case_view(n, c, plan.file) for n, c in enumerate(plan.cases, 1)]
    fleet = digest(plan.cases, Views(lambda step: step_view(step, plan.file), transcript_rows))  # the rest as rows
    return fleet, [case_view(n, c, plan.file) for n, c in fleet.whole]


def render_report(run: RunResult, plan: PlanResult, changes: Changes | None = None, previous: str | None = None,
                  data: dict[str, Any] | None = None) -> str:
    """The report page for one plan; previous is the file name of the report changes compare with."""
    counts = plan.counts()
    fleet, cases = _cases(plan)
    peers, peers_total = peers_line(c.peer for c in plan.cases if c.peer)
    script, script_csp = page_script()
    return environment().get_template("report.html.j2").render(
        plan_name=printable(plan.name),
        plan_file=printable(plan.file),
        target=printable(plan.target),
        peers=[printable(p) for p in peers],
        peers_total=peers_total,
        fleet=fleet,
        full_cases=FULL_CASES,
        full_failures=FULL_FAILURES,
        plan_notes=[printable(n) for n in plan.notes],
        status=plan.status,
        interrupted=run.interrupted,
        counts=counts,
        total=sum(counts.values()),
        started=format_utc(run.started_at),
        duration=format_seconds(plan.duration),
        run_duration=format_seconds(run.duration) if len(run.plans) > 1 else None,
        plans_in_run=len(run.plans),
        version=printable(run.version),
        cases=cases,
        failed_cases=fleet.failed if fleet else [c for c in cases if c.status == FAILED],
        skipped_groups=skipped_groups(fleet.skipped if fleet else cases),
        errors=[printable(e) for e in run.errors],
        percentiles=PERCENTILES,
        max_kept=KEEP_FAILURES,
        changes=changes,
        since=format_utc(parse_utc(changes.since)) if changes and changes.since else "",
        previous=previous,
        source=list(enumerate(printable(plan.source).splitlines(), 1)),
        summary_id=SUMMARY_ID,
        summary_json=embed_json(plan_summary(run, plan)),
        data_id=DATA_ID,
        data_json=embed_json(data if data is not None else plan_data(run, plan)),
        script=script,
        script_csp=script_csp,
        server_names=SERVERS,
    )


def _previous(
    entries: list[ReportEntry], data: dict[str, Any], warnings: list[str]
) -> tuple[ReportEntry, dict[str, Any]] | None:
    """The newest report of the same plan file against the same target from an earlier run."""
    started = parse_utc(data["started_at"])
    plan = data["plan"]
    for entry in sorted(entries, key=lambda e: e.sort_key, reverse=True):
        same = same_plan_key(entry.plan) == same_plan_key(plan)
        if not same or entry.started >= started:
            continue
        try:
            earlier = read_embedded(entry.path, DATA_ID)
        except (OSError, LookupError, ValueError) as exc:
            warnings.append(f"{entry.path}: not compared with: its run data cannot be read ({exc})")
            continue
        if isinstance(earlier, dict) and isinstance(earlier.get("plan"), dict):
            return entry, earlier
        warnings.append(f"{entry.path}: not compared with: its run data has an unexpected shape")
    return None


def write_html_reports(
    run: RunResult, report_dir: Path, on_warning: Callable[[str], None] | None = None
) -> list[Path]:
    """Write one HTML report per plan into report_dir, then rebuild its index.html.

    Returns the reports written. Files are named `<plan-file-stem>-<UTC YYYYmmddTHHMMSS>Z[-N].html`
    and never overwrite one another. Files in the folder that cannot be read are skipped and
    reported through on_warning (one line each; by default, the logging module).
    """
    report_dir = Path(report_dir)
    warnings: list[str] = []
    written: list[Path] = []
    if report_dir.exists() and not report_dir.is_dir():  # mkdir would say "File exists"
        raise ReportError(f"cannot write the HTML report in {report_dir}: {os.strerror(errno.ENOTDIR)}")
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        entries, _ = scan_reports(report_dir)  # rebuild_index below warns about unreadable files
        for plan in run.plans:
            data = plan_data(run, plan)
            found = _previous(entries, data, warnings)
            page = None
            if found:
                from runner.report.compare import compare_runs  # only with an earlier report to compare with

                try:
                    page = render_report(run, plan, compare_runs(found[1], data), found[0].path.name, data)
                except (AttributeError, KeyError, TypeError, ValueError, OverflowError):  # edited by hand
                    warnings.append(f"{found[0].path.name}: its data is damaged; this run is not compared with it")
            if page is None:
                page = render_report(run, plan, None, None, data)
            stem = report_stem(plan.file, run.started_at)
            written.append(write_new(report_dir, stem, ".html", page.encode("utf-8")))
    except OSError as exc:  # the folder is named, not the temporary file that could not be made in it
        raise ReportError(f"cannot write the HTML report in {report_dir}: {exc.strerror or exc}") from exc
    warnings.extend(rebuild_index(report_dir, entries))  # the reports read above are not read again
    warn = on_warning or logging.getLogger(__name__).warning
    for warning in dict.fromkeys(warnings):
        warn(warning)
    return written
