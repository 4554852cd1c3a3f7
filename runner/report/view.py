"""The report page's view of a plan's results: each case, session and step shaped as the page shows them
(printable text, formatted times and figures, a long transcript cut), so the template only lays them out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from runner.report.advice import SmugglingAdvice, smuggling_advice
from runner.report.chart import latency_chart
from runner.report.format import (
    format_latency,
    format_seconds,
    format_utc,
    printable,
    split_lines,
    tls_rows,
    why_failed,
)
from runner.report.mailfacts import mail_rows
from runner.results import FAILED, INFO, PASSED, RECV, SEND, SKIPPED, CaseResult, StepResult, show_bytes

if TYPE_CHECKING:
    from runner.report.tlsfacts import OfferView

__all__ = ["MAX_EVENT_LINES", "CaseView", "LoadView", "SessionView", "StepView", "case_view", "skipped_groups",
           "step_view", "transcript_rows"]

MAX_EVENT_LINES = 400  # a long DATA body is cut in the page; the embedded data keeps all of it
_DIRECTION = {SEND: ("C:", "c"), RECV: ("S:", "s"), INFO: ("*", "i")}


@dataclass(frozen=True)
class StepView:
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
class SessionView:
    """One connection's worth of a case: the final try, an earlier try, or a kept load session."""

    title: str
    status: str
    reason: str
    failed_step: StepView | None
    steps: list[StepView]
    captures: list[tuple[str, str, int]]
    transcript: list[tuple[str, str, str, str]]  # offset, direction, css class, text
    mail: list[tuple[int, str, list[tuple[str, str]]]]  # expect_delivery/expect_dsn: step, action, facts
    offers: list[OfferView]  # tls_offer steps' facts


@dataclass(frozen=True)
class LoadView:
    """A --repeat case folded into figures; its sessions are not listed one by one."""

    figures: list[tuple[str, str, str]]  # label, value, css class
    chart: Markup
    failures: list[tuple[str, int, str]]  # reason, sessions, share of all sessions
    headline: str  # one line for the case header
    first: SessionView | None  # the first session, kept as an example; None when none ran
    failing: list[SessionView]  # failing sessions kept whole (at most stats.KEEP_FAILURES)


@dataclass(frozen=True)
class CaseView:
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
    session: SessionView
    tries: list[SessionView]  # earlier failed tries of a case with retry:, oldest first
    load: LoadView | None
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


def step_view(step: StepResult, file: str) -> StepView:
    return StepView(
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


def transcript_rows(case: CaseResult) -> list[tuple[str, str, str, str]]:
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


def _session(title: str, case: CaseResult, file: str, status: str | None = None) -> SessionView:
    steps = [step_view(s, file) for s in case.steps]
    failed = next((v for s, v in zip(case.steps, steps, strict=True) if s.status == FAILED), None)
    status = status or case.status
    return SessionView(
        title=printable(title),
        status=status,
        reason=printable(why_failed(case)) if status == FAILED else printable(case.reason),
        failed_step=failed,
        steps=steps,
        captures=[(printable(k), printable(v), s.index) for s in case.steps for k, v in s.captures.items()],
        transcript=transcript_rows(case),
        mail=[(s.index, s.action, [(printable(k), printable(v)) for k, v in mail_rows(s.details)])
              for s in case.steps if s.details and s.action != "tls_offer"],
        offers=_offers(case),
    )


def _offers(case: CaseResult) -> list[OfferView]:
    """The tls_offer steps' facts laid out (runner.report.tlsfacts, imported only for a case that has one)."""
    steps = [s for s in case.steps if s.details and s.action == "tls_offer"]
    if not steps:
        return []
    from runner.report.tlsfacts import offer_view

    return [offer_view(s.index, s.details) for s in steps]


def _share(part: int, whole: int) -> str:
    if not whole:
        return ""
    share = 100 * part / whole
    return f"{share:.1f} %" if share >= 0.1 else "< 0.1 %"


def _load(case: CaseResult, file: str) -> LoadView:
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
        ("processes", f"{int(load.get('processes') or 1)}", ""),
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
    return LoadView(figures, latency_chart(load.get("steps") or []), failures, headline, first, failing)


def case_view(n: int, case: CaseResult, file: str) -> CaseView:
    load = _load(case, file) if case.load is not None else None
    tries = [] if load else [
        _session(f"try {k} — {t.status}: {why_failed(t)}", t, file) for k, t in enumerate(case.attempts, 1)
    ]
    title = f"try {len(tries) + 1}, the last" if tries else ""
    return CaseView(
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


def skipped_groups(cases: list[Any]) -> list[tuple[str, list[Any]]]:
    """Skipped cases grouped by why, so a summary says what a `when:` left out."""
    groups: dict[str, list[CaseView]] = {}
    for case in cases:
        if case.status == SKIPPED:
            reason = case.reason.removeprefix("skipped: ") if case.reason else "no reason given"
            groups.setdefault(reason, []).append(case)
    return list(groups.items())
