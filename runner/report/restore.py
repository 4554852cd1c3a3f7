"""A run read back from its JSON (`--json`), as `RunResult.to_dict()` wrote it: for merging shards.

The JSON is the one machine-readable shape of a run, so reading it back is the exact inverse of
`to_dict()`; anything that does not have that shape is a ReportError naming the file and the field,
never a KeyError from deep inside.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.errors import ReportError
from runner.files import read_regular
from runner.report.format import parse_utc
from runner.results import CaseResult, Event, PlanResult, RunResult, StepResult
from runner.smtp.protocol import Reply

__all__ = ["MAX_RESULT_BYTES", "read_result", "run_from_dict", "unshow_bytes"]

MAX_RESULT_BYTES = 1 << 30  # 1 GiB: 10,000 cases with their transcripts take well under this
_ESCAPE = re.compile(r"\\(\\|t|n|r|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})")
_NAMED = {"\\": b"\\", "t": b"\t", "n": b"\n", "r": b"\r"}


def unshow_bytes(text: str) -> bytes:
    """The bytes `results.show_bytes` showed as `text` (its escapes undone; \\xNN is the byte NN)."""
    out, last = bytearray(), 0
    for m in _ESCAPE.finditer(text):
        out += text[last:m.start()].encode("utf-8", "surrogateescape")
        code = m.group(1)
        if code in _NAMED:
            out += _NAMED[code]
        elif code[0] == "x":
            out.append(int(code[1:], 16))
        else:
            out += chr(int(code[1:], 16)).encode("utf-8", "surrogatepass")
        last = m.end()
    out += text[last:].encode("utf-8", "surrogateescape")
    return bytes(out)


def _when(text: Any) -> datetime:
    when = parse_utc(text) if isinstance(text, str) else None
    if when is None:
        raise ValueError(f"not a UTC time: {text!r}")
    return when


def _reply(data: dict[str, Any] | None) -> Reply | None:
    if data is None:
        return None
    lines = tuple(str(line) for line in data["lines"])
    raw = "".join(f"{data['code']}{'-' if i < len(lines) - 1 else ' '}{line}\r\n" for i, line in enumerate(lines))
    return Reply(int(data["code"]), lines, raw.encode("utf-8", "surrogateescape"))


def _step(d: dict[str, Any]) -> StepResult:
    return StepResult(index=int(d["index"]), line=d["line"], action=str(d["action"]), label=str(d["sent"]),
                      status=str(d["status"]), expected=d["expected"], reply=_reply(d["reply"]), reason=d["reason"],
                      started=float(d["started"]), duration=float(d["duration"]), captures=dict(d["captures"]),
                      file=d.get("file"), details=d.get("details"), verdict=d.get("verdict"))


def _case(d: dict[str, Any]) -> CaseResult:
    return CaseResult(
        name=str(d["name"]), status=str(d["status"]), steps=[_step(s) for s in d["steps"]],
        transcript=[Event(float(e["t"]), str(e["dir"]), unshow_bytes(str(e["data"]))) for e in d["transcript"]],
        started_at=_when(d["started_at"]), duration=float(d["duration"]), target=str(d["target"]), peer=d["peer"],
        source=d.get("source"), reason=d["reason"], line=d["line"], tls=d["tls"], notes=[str(n) for n in d["notes"]],
        attempts=[_case(a) for a in d["attempts"]], load=d["load"], position=d.get("position"))


def _plan(d: dict[str, Any]) -> PlanResult:
    return PlanResult(name=str(d["name"]), file=str(d["file"]), source=str(d["source"]), target=str(d["target"]),
                      cases=[_case(c) for c in d["cases"]], notes=[str(n) for n in d["notes"]],
                      dns_seconds=d.get("dns_seconds"))


def run_from_dict(data: Any) -> RunResult:
    """The RunResult whose `to_dict()` this is; KeyError, TypeError or ValueError when it is not one."""
    shard = data.get("shard")
    return RunResult(version=str(data["smtprun"]), started_at=_when(data["started_at"]),
                     plans=[_plan(p) for p in data["plans"]], duration=float(data["duration"]),
                     interrupted=bool(data["interrupted"]), errors=[str(e) for e in data["errors"]],
                     shard=None if shard is None else (int(shard["index"]), int(shard["total"])))


def read_result(path: Path) -> RunResult:
    """One `--json` result file; a ReportError saying what is wrong with it otherwise."""
    try:
        data = read_regular(path, MAX_RESULT_BYTES)
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_RESULT_BYTES:
        raise ReportError(f"{path}: larger than {MAX_RESULT_BYTES >> 20} MiB")
    try:
        parsed = json.loads(data)
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not UTF-8 text, so not an smtprun --json result") from None
    except json.JSONDecodeError as exc:
        doc = exc.doc.strip()
        truncated = (doc.startswith(("{", "[")) and not doc.endswith(("}", "]"))) or exc.pos >= len(doc)
        if not doc:
            raise ReportError(f"{path}: empty, so not an smtprun --json result") from None
        cut = " (the file ends too early: truncated?)" if truncated else ""
        raise ReportError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}{cut}") from None
    if not isinstance(parsed, dict) or "smtprun" not in parsed or "plans" not in parsed:
        raise ReportError(f"{path}: not an smtprun --json result (no 'smtprun' version and 'plans')")
    try:
        return run_from_dict(parsed)
    except KeyError as exc:
        raise ReportError(f"{path}: not an smtprun --json result: the field {exc} is missing") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ReportError(f"{path}: not an smtprun --json result: {exc}") from None
