"""The run as JSON: `RunResult.to_dict()`, the one machine-readable shape of a run.

`smtprun run --json` writes it as the run goes (`JsonStream`): each case's JSON is put on disk when its
verdict comes, so a fleet of 10,000 targets is never one document in memory. The cases of each plan are
spooled to a temporary file in the order they end, with where each lies. When the run ends — Ctrl-C
included — the keys known only then (the run's duration, status and counts, each plan's status and
duration) are written around the spooled cases, read back in plan order, and the file replaces any earlier
one at once. A case that never ended (the run was interrupted first) is written as the run left it. The
document is the one `json_text` writes for the same run.
"""

from __future__ import annotations

import json
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
    """One plan's cases in a temporary file, each written as it ends, whatever its place; `copy` puts them
    in plan order. Only where each case lies in the file is kept, not its text."""

    def __init__(self, plan: PlanResult, folder: Path | None) -> None:
        self.plan = plan
        self.file: IO[bytes] = tempfile.TemporaryFile(  # noqa: SIM115 -- open for the run, closed by JsonStream
            "w+b", buffering=1 << 20, dir=folder, prefix=".smtprun-json-")
        self.rank = {case.position: i for i, case in enumerate(plan.cases)}  # execute gives each its own
        self.places: dict[int, tuple[int, int]] = {}  # a case's place in the plan -> its offset and size in the file
        self.size = 0

    def add(self, case: CaseResult) -> None:
        i = self.rank.get(case.position)
        if i is not None and i not in self.places:  # one of the plan's places, not written yet
            self._write(i, case)

    def _write(self, i: int, case: CaseResult) -> None:
        data = case_json(case).encode("utf-8")
        self.file.write(data)
        self.places[i] = (self.size, len(data))
        self.size += len(data)

    def finish(self) -> None:
        """The cases not written yet, as the run left them (those that never ended: interrupted)."""
        for i, case in enumerate(self.plan.cases):
            if i not in self.places:
                self._write(i, case)
        self.file.flush()

    def copy(self, out: IO[str]) -> None:
        for i in range(len(self.plan.cases)):
            offset, size = self.places[i]
            self.file.seek(offset)
            out.write((",\n" if i else "") + self.file.read(size).decode("utf-8"))


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
            spool.copy(out)
        out.write(text + "\n")

    def close(self) -> None:
        for spool in self.spools.values():
            spool.file.close()
        self.spools.clear()
