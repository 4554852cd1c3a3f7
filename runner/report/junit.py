"""JUnit XML for CI: one <testsuite> per plan, one <testcase> per case.

The shape CI servers read (Jenkins' junit-10.xsd, GitLab): a <testsuites> root with totals,
failed cases carry a <failure> with the failing step and the transcript, skipped cases a
<skipped/>. XML 1.0 cannot hold NUL and most control characters at all, so every string is
passed through `printable`, which writes them as visible escapes.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from runner.errors import ReportError
from runner.report.archive import atomic_write
from runner.report.render import printable, split_lines
from runner.results import FAILED, INFO, SKIPPED, CaseResult, PlanResult, RunResult, show_bytes

__all__ = ["junit_xml", "transcript_text", "write_junit"]


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


def _failure_text(case: CaseResult, file: str) -> str:
    parts = []
    step = case.failed_step
    if step is not None:
        where = f"{file}:{step.line}" if step.line else file
        parts.append(f"step {step.index} ({step.action}) at {where}")
        if step.label:
            parts.append(f"sent:     {step.label}")
        parts.append(f"expected: {step.expected or '-'}")
        parts.append(f"got:      {step.reply.summary() if step.reply else 'no reply'}")
        if step.reason:
            parts.append(f"reason:   {step.reason}")
    elif case.reason:
        parts.append(case.reason)
    parts += ["", "transcript:", transcript_text(case)]
    return printable("\n".join(parts))


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
        time=_seconds(sum(c.duration for c in plan.cases)),
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
        if case.status == FAILED:
            step = case.failed_step
            failure = ET.SubElement(
                tc, "failure",
                message=printable(case.reason or (step.reason if step else None) or "failed"),
                type=f"smtprun.{step.action}" if step else "smtprun.case",
            )
            failure.text = _failure_text(case, plan.file)
        elif case.status == SKIPPED:
            ET.SubElement(tc, "skipped", message=printable(case.reason or "skipped"))
        if case.transcript:
            ET.SubElement(tc, "system-out").text = transcript_text(case)
    return suite


def junit_xml(run: RunResult) -> bytes:
    counts = run.counts()
    root = ET.Element(
        "testsuites",
        name="smtprun",
        tests=str(sum(counts.values())),
        failures=str(counts.get(FAILED, 0)),
        errors="0",  # the Jenkins JUnit XSD allows no `skipped` here; each testsuite carries it
        time=_seconds(run.duration),
    )
    run_started = run.started_at.strftime("%Y-%m-%dT%H:%M:%S")
    for plan in run.plans:
        root.append(_suite(plan, run.version, run_started))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(run: RunResult, path: Path | str) -> None:
    """Write the run as JUnit XML to path (atomically), or to standard output when path is "-"."""
    data = junit_xml(run)
    if str(path) == "-":
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
        return
    try:
        atomic_write(Path(path), data)
    except OSError as exc:
        raise ReportError(f"cannot write the JUnit report {path}: {exc.strerror or exc}") from exc
