"""One self-contained HTML page per plan per run, compared with the plan's previous report.

The page needs nothing but itself: CSS inline, collapsing done with <details>, and one small script
of its own (expand all / collapse all), the only one its Content-Security-Policy allows (by hash);
without scripts the page reads the same, a click per case. The run's data for the plan is embedded
as JSON so the index and later comparisons can read the report back.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from runner.errors import ReportError
from runner.report.advice import SERVERS, SmugglingAdvice, smuggling_advice
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
from runner.report.chart import PERCENTILES, latency_chart
from runner.report.compare import Changes, compare_runs
from runner.report.digest import FULL_CASES, FULL_FAILURES, digest, lighten, peers_line
from runner.report.format import (
    format_latency,
    format_seconds,
    format_utc,
    parse_utc,
    printable,
    split_lines,
    tls_rows,
    why_failed,
)
from runner.report.mailfacts import mail_rows
from runner.report.render import embed_json, environment, page_script
from runner.results import (
    FAILED,
    INFO,
    PASSED,
    RECV,
    SEND,
    SKIPPED,
    CaseResult,
    PlanResult,
    RunResult,
    StepResult,
    show_bytes,
    utc_iso,
)
from runner.stats import KEEP_FAILURES

__all__ = ["plan_data", "render_report", "write_html_reports"]

MAX_EVENT_LINES = 400  # a long DATA body is cut in the page; the embedded data keeps all of it
_DIRECTION = {SEND: ("C:", "c"), RECV: ("S:", "s"), INFO: ("*", "i")}


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


@dataclass(frozen=True)
class _Step:
    index: int
    ref: str
    href: str  # "" when the step is in an included file, whose source the page does not embed
    action: str
    label: str
    expected: str
    reply: str
    status: str
    reason: str
    duration: str
    verdict: str = ""  # a finding in words (smuggle:), shown beside the result


@dataclass(frozen=True)
class _Session:
    """One connection's worth of a case: the final try, an earlier try, or a kept load session."""

    title: str
    status: str
    reason: str
    failed_step: _Step | None
    steps: list[_Step]
    captures: list[tuple[str, str, int]]
    transcript: list[tuple[str, str, str, str]]  # offset, direction, css class, text
    mail: list[tuple[int, str, list[tuple[str, str]]]]  # expect_delivery/expect_dsn: step, action, facts


@dataclass(frozen=True)
class _Load:
    """A --repeat case folded into figures; its sessions are not listed one by one."""

    figures: list[tuple[str, str, str]]  # label, value, css class
    chart: Markup
    failures: list[tuple[str, int, str]]  # reason, sessions, share of all sessions
    headline: str  # one line for the case header
    first: _Session | None  # the first session, kept as an example; None when none ran
    failing: list[_Session]  # failing sessions kept whole (at most stats.KEEP_FAILURES)


@dataclass(frozen=True)
class _Case:
    anchor: str
    name: str
    status: str
    open: bool
    ref: str
    href: str
    duration: str
    started: str
    target: str
    peer: str
    source: str  # the local address connected from, "" when none was chosen
    reason: str
    notes: list[str]
    session: _Session
    tries: list[_Session]  # earlier failed tries of a case with retry:, oldest first
    load: _Load | None
    tls: list[tuple[str, str]]
    verdict: str = ""  # the first step verdict, for the case's header line
    advice: SmugglingAdvice | None = None  # what to do about a smuggling finding, shown beside it


def _ref(file: str, line: int | None) -> str:
    return printable(f"{file}:{line}" if line else file)


def _href(line: int | None) -> str:
    """Link to the line in the embedded plan source."""
    return f"#L{line}" if line else "#source"


def _reply(step: StepResult) -> str:
    reply = step.reply
    if reply is None:
        return ""
    lines = reply.lines or ("",)
    last = len(lines) - 1
    return printable(
        "\n".join(f"{reply.code}{'-' if i < last else ' '}{line}".rstrip() for i, line in enumerate(lines))
    )


def _step(step: StepResult, file: str) -> _Step:
    return _Step(
        index=step.index,
        ref=_ref(step.file or file, step.line),
        href="" if step.file else _href(step.line),
        action=step.action,
        label=printable(step.label),
        expected=printable(step.expected),
        reply=_reply(step),
        status=step.status,
        reason=printable(step.reason),
        duration=f"{step.duration:.3f}s",
        verdict="" if step.verdict == step.reason else printable(step.verdict),
    )


def _transcript(case: CaseResult) -> list[tuple[str, str, str, str]]:
    rows = []
    for event in case.transcript:
        who, css = _DIRECTION.get(event.direction, (event.direction, "i"))
        offset = f"+{event.t:.3f}s"
        if event.direction == INFO:
            rows.append((offset, who, css, printable(event.data.decode("utf-8", "surrogateescape"))))
            continue
        lines = split_lines(event.data)
        for i, line in enumerate(lines[:MAX_EVENT_LINES]):
            rows.append((offset if i == 0 else "", who, css, show_bytes(line)))
        if len(lines) > MAX_EVENT_LINES:
            hidden = len(lines) - MAX_EVENT_LINES
            note = f"… {hidden} more lines ({len(event.data)} bytes in all) not shown; the embedded data has them"
            rows.append(("", who, "i", note))
    return rows


def _session(title: str, case: CaseResult, file: str, status: str | None = None) -> _Session:
    steps = [_step(s, file) for s in case.steps]
    failed = next((v for s, v in zip(case.steps, steps, strict=True) if s.status == FAILED), None)
    status = status or case.status
    return _Session(
        title=printable(title),
        status=status,
        reason=printable(why_failed(case)) if status == FAILED else printable(case.reason),
        failed_step=failed,
        steps=steps,
        captures=[(printable(k), printable(v), s.index) for s in case.steps for k, v in s.captures.items()],
        transcript=_transcript(case),
        mail=[(s.index, s.action, [(printable(k), printable(v)) for k, v in mail_rows(s.details)])
              for s in case.steps if s.details],
    )


def _share(part: int, whole: int) -> str:
    if not whole:
        return ""
    share = 100 * part / whole
    return f"{share:.1f} %" if share >= 0.1 else "< 0.1 %"


def _load(case: CaseResult, file: str) -> _Load:
    load = case.load or {}
    sessions, failed = int(load.get("sessions") or 0), int(load.get("failed") or 0)
    rate = load.get("sessions_per_s")
    figures = [
        ("sessions", f"{sessions:,}", ""),
        ("passed", f"{int(load.get('passed') or 0):,}", "c-pass" if sessions - failed else "c-zero"),
        ("failed", f"{failed:,}", "c-fail" if failed else "c-zero"),
        ("sessions/s", f"{rate:,}" if rate is not None else "—", ""),
        ("session p50", format_latency(load.get("session_p50")), ""),
        ("session p99", format_latency(load.get("session_p99")), ""),
        ("wall time", format_seconds(float(load.get("wall") or 0.0)), ""),
    ]
    failures = [(printable(str(reason)), int(count), _share(int(count), sessions))
                for reason, count in (load.get("failures") or {}).items()]
    headline = f"{sessions:,} sessions"
    if rate is not None:
        headline += f" · {rate:,}/s"
    headline += f" · p99 {format_latency(load.get('session_p99'))}"
    # case.status and case.reason speak for all sessions; the first one failed only if a step did
    first_status = FAILED if case.failed_step else PASSED
    first = _session(f"first session — {first_status}", case, file, first_status) if sessions else None
    failing = [
        _session(f"failing session {n} — {why_failed(example)}", example, file)
        for n, example in enumerate(case.attempts, 1)
    ]
    return _Load(figures, latency_chart(load.get("steps") or []), failures, headline, first, failing)


def _case(n: int, case: CaseResult, file: str) -> _Case:
    load = _load(case, file) if case.load is not None else None
    tries = [] if load else [
        _session(f"try {k} — {t.status}: {why_failed(t)}", t, file) for k, t in enumerate(case.attempts, 1)
    ]
    title = f"try {len(tries) + 1}, the last" if tries else ""
    return _Case(
        anchor=f"case-{n}",
        name=printable(case.name),
        status=case.status,
        open=case.status == FAILED,
        ref=_ref(file, case.line),
        href=_href(case.line),
        duration=format_seconds(case.duration),
        started=format_utc(case.started_at),
        target=printable(case.target),
        peer=printable(case.peer),
        source=printable(case.source),
        reason=printable(case.reason),
        notes=[printable(n) for n in case.notes],
        session=_session(title, case, file),
        tries=tries,
        load=load,
        tls=tls_rows(case.tls),
        verdict=printable(next((s.verdict for s in case.steps if s.verdict), None)),
        advice=smuggling_advice(case),
    )


def _skipped(cases: list[Any]) -> list[tuple[str, list[Any]]]:
    """Skipped cases grouped by why, so a summary says what a `when:` left out."""
    groups: dict[str, list[_Case]] = {}
    for case in cases:
        if case.status == SKIPPED:
            reason = case.reason.removeprefix("skipped: ") if case.reason else "no reason given"
            groups.setdefault(reason, []).append(case)
    return list(groups.items())


def render_report(
    run: RunResult,
    plan: PlanResult,
    changes: Changes | None = None,
    previous: str | None = None,
    data: dict[str, Any] | None = None,
) -> str:
    """The report page for one plan; previous is the file name of the report changes compare with."""
    counts = plan.counts()
    fleet = None
    if len(plan.cases) > FULL_CASES:  # only failing cases whole, the rest as table rows
        fleet = digest(plan.cases, lambda step: _step(step, plan.file))
        cases = [_case(n, c, plan.file) for n, c in fleet.whole]
    else:
        cases = [_case(n, c, plan.file) for n, c in enumerate(plan.cases, 1)]
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
        skipped_groups=_skipped(fleet.skipped if fleet else cases),
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
    warnings.extend(rebuild_index(report_dir))
    warn = on_warning or logging.getLogger(__name__).warning
    for warning in dict.fromkeys(warnings):
        warn(warning)
    return written
