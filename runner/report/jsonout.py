"""The run as JSON: `RunResult.to_dict()`, the one machine-readable shape of a run.

`smtprun run --json` writes it as the run goes (`JsonStream`): each case's JSON is put on disk when its
verdict comes, so a fleet of 10,000 targets is never one document in memory. The cases of each plan are
spooled to a temporary file in plan order (a case that ends before the ones listed above it waits, as its
JSON text, until they have). When the run ends — Ctrl-C included — the keys known only then (the run's
duration, status and counts, each plan's status and duration) are written around the spooled cases, and
the file replaces any earlier one at once. A case that never ended (the run was interrupted first) is
written as the run left it. The document is the one `json_text` writes for the same run.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import IO, Any, TextIO

import orjson

from runner.errors import ReportError
from runner.report.outputs import atomic_write, atomic_writer
from runner.results import CaseResult, PlanResult, RunResult

__all__ = ["JsonStream", "case_json", "json_text", "write_json"]


def _dumps(data: Any) -> str:
    """JSON indented by two, UTF-8 as it is. orjson writes what the standard library's encoder writes with
    indent=2 (a small number spelled 0.000061, not 6.1e-05) about twenty times faster (4 µs a fleet's case against
    94 µs; docs/fleets.md); what it refuses — a lone surrogate (an undecodable byte kept as text), a key that is not
    a string — the standard library writes."""
    try:
        return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode("utf-8")
    except orjson.JSONEncodeError:
        pass
    text = json.dumps(data, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (an undecodable byte kept as text): escape it
        text = json.dumps(data, indent=2, ensure_ascii=True)
    return text


def json_text(run: RunResult) -> str:
    return _dumps(run.to_dict()) + "\n"


def write_json(run: RunResult, path: Path | str, out: TextIO | None = None) -> None:
    """Write the run as JSON to path (atomically), or when path is "-" to out (standard output)."""
    text = json_text(run)
    if str(path) == "-":
        out = out or sys.stdout
        out.write(text)
        out.flush()
        return
    try:
        atomic_write(Path(path), text.encode("utf-8"))
    except OSError as exc:
        raise ReportError(f"cannot write the JSON report {path}: {exc.strerror or exc}") from exc


CASE_INDENT = " " * 8  # a case's depth in the document (run → plans → plan → cases, two spaces each)


def case_json(case: CaseResult) -> str:
    """One case as it stands in the document's list of cases, indented to its depth (JSON strings hold no
    raw line break, so every line break is the indenter's)."""
    return CASE_INDENT + _dumps(case.to_dict()).replace("\n", "\n" + CASE_INDENT)


class _PlanSpool:
    """One plan's cases, in plan order, in a temporary file."""

    def __init__(self, plan: PlanResult, folder: Path | None) -> None:
        self.plan = plan
        self.file: IO[str] = tempfile.TemporaryFile(  # noqa: SIM115 -- open for the run, closed by JsonStream
            "w+", buffering=1 << 20, encoding="utf-8", newline="", dir=folder, prefix=".smtprun-json-")
        self.rank = {case.position: i for i, case in enumerate(plan.cases)}  # execute gives each its own
        self.waiting: dict[int, str] = {}
        self.written = 0  # plan.cases[:written] are in the file

    def add(self, case: CaseResult) -> None:
        i = self.rank.get(case.position)
        if i is None or i < self.written:  # not one of the plan's places, or already written
            return
        self.waiting[i] = case_json(case)
        while self.written in self.waiting:
            self._write(self.waiting.pop(self.written))

    def _write(self, text: str) -> None:
        self.file.write(",\n" + text if self.written else text)
        self.written += 1

    def finish(self) -> None:
        """The cases not written yet, as the run left them (those that never ended: interrupted)."""
        for i in range(self.written, len(self.plan.cases)):
            self._write(self.waiting.pop(i, None) or case_json(self.plan.cases[i]))
        self.file.flush()


class JsonStream:
    """`add` is the run's on_case hook; `write` (the signature of `jsonout.write_json`) ends the document.

    A spool that cannot be written (a full disk) stops the streaming; `write` then says why.
    """

    def __init__(self, path: Path | str) -> None:
        self.folder = None if str(path) == "-" else Path(path).parent  # the spools beside the file: its disk
        self.spools: dict[int, _PlanSpool] = {}
        self.error: OSError | None = None

    def add(self, plan: PlanResult, case: CaseResult) -> None:
        if self.error is not None:
            return
        try:
            self._spool(plan).add(case)
        except OSError as exc:
            self.error = exc

    def _spool(self, plan: PlanResult) -> _PlanSpool:
        spool = self.spools.get(id(plan))
        if spool is None:
            spool = self.spools[id(plan)] = _PlanSpool(plan, self.folder)
        return spool

    def write(self, run: RunResult, path: Path | str, out: TextIO | None = None) -> None:
        """The whole document to path (atomically), or when path is "-" to out (standard output)."""
        try:
            if self.error is not None:
                raise self.error
            for plan in run.plans:
                self._spool(plan).finish()
            if str(path) == "-":
                out = out or sys.stdout
                self._document(run, out)
                out.flush()
                return
            with atomic_writer(Path(path)) as f:
                self._document(run, f)
        except OSError as exc:
            raise ReportError(f"cannot write the JSON report {path}: {exc.strerror or exc}") from exc
        finally:
            self.close()

    def _document(self, run: RunResult, out: IO[str]) -> None:
        data = run.to_dict(cases=False)
        marks = {}
        for plan, entry in zip(run.plans, data["plans"], strict=True):
            if plan.cases:
                mark = f"smtprun-cases-{uuid.uuid4().hex}"
                entry["cases"] = [mark]
                marks[f'{CASE_INDENT}"{mark}"'] = self._spool(plan)
        text = _dumps(data)
        for mark, spool in marks.items():
            before, text = text.split(mark, 1)
            out.write(before)
            spool.file.seek(0)
            shutil.copyfileobj(spool.file, out, 1 << 20)
        out.write(text + "\n")

    def close(self) -> None:
        for spool in self.spools.values():
            spool.file.close()
        self.spools.clear()
