"""What a person sees in the terminal: a line per case as it ends, failing steps, a summary."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from runner.results import FAILED, PASSED, RECV, SEND, SKIPPED, CaseResult, PlanResult, RunResult, show_bytes
from runner.text import CONTROLS, MARKUP, printable


def _safe(text: str | None) -> str:
    """Text from a server or a plan, with control characters escaped: it cannot drive the terminal."""
    return printable(text, CONTROLS)


__all__ = ["Console", "Output"]


def _reply_lines(raw: bytes) -> list[str]:
    """A reply's lines as they came, code, separator and text (`250-PIPELINING`), bytes escaped."""
    return [show_bytes(line) for line in raw.removesuffix(b"\r\n").split(b"\r\n")]


class Output:
    """A standard stream its reader may close (`smtprun -v | head -3`): from then on writes are dropped.

    A closed pipe is a normal way for a Unix tool's output to end, not an error: the first write that
    meets it points the file descriptor at /dev/null (so nothing complains at exit) and calls `on_close`.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.closed_by_reader = False
        self.on_close: list[Callable[[], None]] = []

    def write(self, text: str) -> int:
        if not self.closed_by_reader:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._reader_left()
        return len(text)

    def flush(self) -> None:
        if not self.closed_by_reader:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_left()

    def _reader_left(self) -> None:
        self.closed_by_reader = True
        with contextlib.suppress(OSError, ValueError, AttributeError):  # a stream with no file (tests)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        for callback in self.on_close:
            callback()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding: the stream's own
        return getattr(self.stream, name)

_COLOURS = {PASSED: "32", FAILED: "31", SKIPPED: "33", "dim": "2", "bold": "1"}
_WORDS = {PASSED: "PASS", FAILED: "FAIL", SKIPPED: "SKIP"}


def _lines(data: bytes) -> list[str]:
    """Bytes as the lines shown by -v: a CRLF ends a line unseen, any other line end is shown as sent
    (a bare LF as \\n, a bare CR as \\r), so smuggling's broken endings can be told from real ones."""
    pieces = data.split(b"\n")
    tail = pieces.pop()  # what follows the last LF: nothing when the data ends a line
    lines = [show_bytes(p[:-1]) if p.endswith(b"\r") else show_bytes(p) + "\\n" for p in pieces]
    return [*lines, show_bytes(tail)] if tail else lines


@dataclass
class Console:
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    colour: bool | None = None
    label_cases: bool = False  # -v with several sessions at once

    def __post_init__(self) -> None:
        if self.colour is None:
            self.colour = bool(getattr(self.out, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ \
                and os.environ.get("TERM") != "dumb"

    def paint(self, text: str, style: str) -> str:
        return f"\033[{_COLOURS[style]}m{text}\033[0m" if self.colour else text

    def case_done(self, plan: PlanResult, case: CaseResult) -> None:
        word = self.paint(_WORDS.get(case.status, case.status.upper()), case.status)
        where = f" → {case.peer}" if case.peer else ""
        self.out.write(f"{word}  {_safe(plan.file)} · {_safe(case.name)}"
                       f"{self.paint(f'  ({case.duration:.2f}s{where})', 'dim')}\n")
        if case.load:
            self._load(case.load)
        step = case.failed_step
        if case.status == FAILED and step is not None:
            what = step.label if step.label.lower().startswith(step.action) else f"{step.action} {step.label}"
            self.out.write(f"      step {step.index} at {_safe(step.file or plan.file)}:{step.line}: {_safe(what)}\n")
            if step.expected:
                self.out.write(f"        expected: {_safe(step.expected)}\n")
            why = step.reason or ""
            if step.reply is not None:
                got = "\n                  ".join(_reply_lines(step.reply.raw))
                self.out.write(f"        got:      {got}\n")
                why = why.replace(step.reply.summary(), str(step.reply.code))  # got: shows it whole
            self.out.write(f"        {self.paint('why:', 'bold')}      {_safe(why)}\n")
        elif case.status != PASSED and case.reason:
            self.out.write(f"        {_safe(case.reason)}\n")
        for verdict in (s.verdict for s in case.steps if s.verdict and s.verdict != s.reason):
            self.out.write(f"        verdict: {_safe(verdict)}\n")
        for note in case.notes:
            self.out.write(f"        {_safe(note)}\n")
        self.out.flush()

    def _load(self, load: dict) -> None:  # type: ignore[type-arg]
        processes = load.get("processes", 1)
        spread = f" ({processes} processes)" if processes > 1 else ""
        self.out.write(f"      {load['sessions']} sessions in {load['wall']:.2f}s{spread}: {load['sessions_per_s']}/s, "
                       f"{load['failed']} failed; session p50 {load['session_p50'] * 1000:.1f} ms, "
                       f"p99 {load['session_p99'] * 1000:.1f} ms\n")
        for reason, count in list(load["failures"].items())[:5]:
            self.out.write(f"        {count} × {_safe(reason)}\n")

    def live(self, case: str, direction: str, data: bytes) -> None:
        """-v: the transcript as it happens, C: for what smtprun sent, S: for the server, S! for its
        4xx and 5xx replies (RFC 5321 §4.2.1: transient and permanent failures), * for smtprun's notes.

        With several sessions in flight, each line names its case, or the lines could not be told apart.
        """
        label = f"[{_safe(case)}] " if self.label_cases else ""
        tag = {SEND: "C:", RECV: "S:"}.get(direction, "*")
        lines = _lines(data)
        for line in lines[:200]:
            if direction == RECV and line[:1] in ("4", "5"):
                self.out.write(f"  {self.paint(label + 'S!', FAILED)} {self.paint(line, FAILED)}\n")
            else:
                self.out.write(f"  {self.paint(label + tag, 'dim')} {line}\n")
        if len(lines) > 200:
            self.out.write(f"  {label}{tag} ... {len(lines) - 200} more lines\n")
        self.out.flush()

    def summary(self, run: RunResult) -> None:
        counts = run.counts()
        parts = [self.paint(f"{counts[PASSED]} passed", PASSED) if counts[PASSED] else "0 passed"]
        if counts[FAILED]:
            parts.append(self.paint(f"{counts[FAILED]} failed", FAILED))
        if counts[SKIPPED]:
            parts.append(self.paint(f"{counts[SKIPPED]} skipped", SKIPPED))
        tail = " (interrupted)" if run.interrupted else ""
        self.out.write(f"{', '.join(parts)} in {run.duration:.2f}s{tail}\n")

    def error(self, text: str) -> None:
        """A message on standard error; whatever a plan or a server put in it cannot drive the terminal."""
        self.err.write(printable(text.rstrip("\n"), MARKUP) + "\n")
        self.err.flush()
