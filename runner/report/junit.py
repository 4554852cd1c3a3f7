"""JUnit XML for CI: one <testsuite> per plan, one <testcase> per case.

The shape CI servers read (Jenkins' junit-10.xsd, GitLab): a <testsuites> root with totals,
failed cases carry a <failure> with the failing step and the transcript, skipped cases a
<skipped/>. A load case (--repeat) is one testcase whose <system-out> holds its figures; a case
retried lists its earlier tries there. Internal errors of smtprun itself become <error>s in a
suite of their own, so CI cannot read a run that went wrong as a pass. XML 1.0 cannot hold NUL
and most control characters at all, so every string is passed through `printable`, which writes
them as visible escapes.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, TextIO

from runner.errors import ReportError
from runner.report.format import format_latency, printable, split_lines, why_failed
from runner.report.mailfacts import mail_rows
from runner.report.outputs import atomic_write
from runner.results import FAILED, INFO, SKIPPED, CaseResult, PlanResult, RunResult, show_bytes

__all__ = ["junit_xml", "load_message", "load_text", "transcript_text", "write_junit"]

MESSAGE_REASONS = 3  # failure reasons named in a load case's one-line message


def _seconds(t: float) -> str:
    return f"{max(t, 0.0):.3f}"


def transcript_text(case: CaseResult) -> str:
    """The transcript as plain text, one line per protocol line: `+0.012s C: EHLO x\\r\\n`."""
    out = []
    for event in case.transcript:
        prefix = f"+{event.t:.3f}s {event.direction}{':' if event.direction != INFO else ''} "
        if event.direction == INFO:
            out.append(prefix + event.data.decode("utf-8", "surrogateescape"))
            continue
        out.extend(prefix + show_bytes(line) for line in split_lines(event.data))
    return printable("\n".join(out))


def load_message(load: dict[str, Any]) -> str:
    """`12 of 5000 sessions failed: 12 × timed out waiting for a reply`."""
    failures = list((load.get("failures") or {}).items())
    text = f"{load.get('failed', 0)} of {load.get('sessions', 0)} sessions failed"
    if failures:
        text += ": " + ", ".join(f"{count} × {reason}" for reason, count in failures[:MESSAGE_REASONS])
        if len(failures) > MESSAGE_REASONS:
            text += f", and {len(failures) - MESSAGE_REASONS} more reasons"
    return printable(text)


def load_text(load: dict[str, Any]) -> str:
    """A load case's figures as plain text: totals, then a line per step, then failures by reason."""
    rate = load.get("sessions_per_s")
    lines = [
        f"sessions: {load.get('sessions', 0)} ({load.get('passed', 0)} passed, {load.get('failed', 0)} failed) "
        f"in {float(load.get('wall') or 0):.3f}s, {rate if rate is not None else '-'} sessions/s",
        f"session duration: p50 {format_latency(load.get('session_p50'))}, "
        f"p99 {format_latency(load.get('session_p99'))}",
    ]
    steps = load.get("steps") or []
    if steps:
        lines.append("reply latency per step:")
        for step in steps:
            figures = ", ".join(f"{k} {format_latency(step.get(k))}" for k in ("p50", "p90", "p99", "max"))
            lines.append(f"  step {step.get('index')} {step.get('label')} (n={step.get('count')}): {figures}")
    failures = load.get("failures") or {}
    if failures:
        lines.append("failures by reason:")
        lines.extend(f"  {count} × {reason}" for reason, count in failures.items())
    return printable("\n".join(lines))


def _failure_text(case: CaseResult, file: str, transcript: bool = True) -> str:
    parts = []
    step = case.failed_step
    if step is not None:
        where = f"{step.file or file}:{step.line}" if step.line else step.file or file
        parts.append(f"step {step.index} ({step.action}) at {where}")
        if step.label:
            parts.append(f"sent:     {step.label}")
        parts.append(f"expected: {step.expected or '-'}")
        parts.append(f"got:      {step.reply.summary() if step.reply else 'no reply'}")
        if step.reason:
            parts.append(f"reason:   {step.reason}")
    elif case.reason:
        parts.append(case.reason)
    if transcript:
        parts += ["", "transcript:", transcript_text(case)]
    return printable("\n".join(parts))


def _load_failure_text(case: CaseResult, file: str) -> str:
    """The figures, then each failing session kept: the first in full, the others by their step."""
    parts = [load_text(case.load or {})]
    for n, example in enumerate(case.attempts, 1):
        parts += ["", f"failing session {n}:", _failure_text(example, file, transcript=n == 1)]
    return printable("\n".join(parts))


def _system_out(case: CaseResult) -> str:
    """What CI shows beside a case: a load case's figures or the earlier tries, notes, the transcript."""
    head: list[str] = []
    if case.load is not None:
        head.append(load_text(case.load))
    else:
        head += [f"try {n} — {t.status}: {why_failed(t)}" for n, t in enumerate(case.attempts, 1)]
    head += case.notes
    for step in case.steps:  # expect_delivery/expect_dsn: the mailbox, the wait, what was found
        if step.details:
            head.append(f"step {step.index} ({step.action}) found:")
            head += [f"  {label}: {value}" for label, value in mail_rows(step.details)]
    transcript = transcript_text(case)
    if not transcript:
        return printable("\n".join(head))
    if not head:
        return transcript
    title = "first session's transcript:" if case.load is not None else "transcript:"
    return printable("\n".join([*head, "", title, transcript]))


def _suite(plan: PlanResult, version: str, run_started: str) -> ET.Element:
    failures = sum(c.status == FAILED for c in plan.cases)
    skipped = sum(c.status == SKIPPED for c in plan.cases)
    started = min((c.started_at for c in plan.cases), default=None)
    suite = ET.Element(
        "testsuite",
        name=printable(plan.name),
        tests=str(len(plan.cases)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=_seconds(plan.duration),
        timestamp=started.strftime("%Y-%m-%dT%H:%M:%S") if started else run_started,
        file=printable(plan.file),
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (("file", plan.file), ("target", plan.target), ("smtprun", version)):
        ET.SubElement(props, "property", name=name, value=printable(value))
    for case in plan.cases:
        tc = ET.SubElement(
            suite, "testcase", classname=printable(plan.name), name=printable(case.name),
            time=_seconds(case.duration),
        )
        if case.status == FAILED and case.load is not None:
            message = load_message(case.load) if case.load.get("failed") else printable(why_failed(case))
            failure = ET.SubElement(tc, "failure", message=message, type="smtprun.load")
            failure.text = _load_failure_text(case, plan.file)
        elif case.status == FAILED:
            step = case.failed_step
            failure = ET.SubElement(
                tc, "failure",
                message=printable(case.reason or (step.reason if step else None) or "failed"),
                type=f"smtprun.{step.action}" if step else "smtprun.case",
            )
            failure.text = _failure_text(case, plan.file)
        elif case.status == SKIPPED:
            ET.SubElement(tc, "skipped", message=printable(case.reason or "skipped"))
        out = _system_out(case)
        if out:
            ET.SubElement(tc, "system-out").text = out
    return suite


def _errors_suite(errors: list[str], timestamp: str) -> ET.Element:
    suite = ET.Element(
        "testsuite", name="smtprun internal errors", tests=str(len(errors)), failures="0",
        errors=str(len(errors)), skipped="0", time="0.000", timestamp=timestamp,
    )
    for n, error in enumerate(errors, 1):
        tc = ET.SubElement(suite, "testcase", classname="smtprun", name=f"internal error {n}", time="0.000")
        ET.SubElement(tc, "error", message=printable(error.splitlines()[0] if error else "internal error"),
                      type="smtprun.internal").text = printable(error)
    return suite


def junit_xml(run: RunResult) -> bytes:
    counts = run.counts()
    root = ET.Element(
        "testsuites",
        name="smtprun",
        tests=str(sum(counts.values()) + len(run.errors)),
        failures=str(counts.get(FAILED, 0)),
        errors=str(len(run.errors)),  # the Jenkins JUnit XSD allows no `skipped` here; each testsuite carries it
        time=_seconds(run.duration),
    )
    run_started = run.started_at.strftime("%Y-%m-%dT%H:%M:%S")
    if run.errors:
        root.append(_errors_suite(run.errors, run_started))
    for plan in run.plans:
        root.append(_suite(plan, run.version, run_started))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(run: RunResult, path: Path | str, out: TextIO | None = None) -> None:
    """Write the run as JUnit XML to path (atomically), or when path is "-" to out (standard output)."""
    data = junit_xml(run)
    if str(path) == "-":
        out = out or sys.stdout
        out.write(data.decode("utf-8"))
        out.flush()
        return
    try:
        atomic_write(Path(path), data)
    except OSError as exc:
        raise ReportError(f"cannot write the JUnit report {path}: {exc.strerror or exc}") from exc
