"""The run as JSON: `RunResult.to_dict()`, the one machine-readable shape of a run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from runner.errors import ReportError
from runner.report.outputs import atomic_write
from runner.results import RunResult

__all__ = ["json_text", "write_json"]


def json_text(run: RunResult) -> str:
    data = run.to_dict()
    text = json.dumps(data, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (an undecodable byte kept as text): escape it
        text = json.dumps(data, indent=2, ensure_ascii=True)
    return text + "\n"


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
