"""One error hierarchy. Everything smtprun raises on purpose derives from SmtprunError."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


class SmtprunError(Exception):
    """Base of every error smtprun reports to its user."""


@dataclass(frozen=True)
class Location:
    """A place in a plan file: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass
class Problem:
    """One thing wrong with a plan, located like a compiler message: an error, or (severity
    "warning") something that runs as written but that a strict server may refuse."""

    message: str
    location: Location | None = None
    hint: str | None = None
    source_line: str | None = None  # the line as shown: secrets masked, controls escaped
    notes: list[str] = field(default_factory=list)
    caret: int | None = None  # the column of source_line under which the caret goes, when not location.col
    severity: str = "error"

    def render(self) -> str:
        head = f"{self.location}: " if self.location else ""
        out = [f"{head}{self.severity}: {self.message}"]
        if self.source_line is not None and self.location is not None:
            line, caret = _excerpt(self.source_line.rstrip(), (self.caret or self.location.col) - 1)
            out.append(f"    {line}")
            out.append("    " + " " * caret + "^")
        if self.hint:
            out.append(f"    hint: {self.hint}")
        out.extend(f"    note: {n}" for n in self.notes)
        return "\n".join(out)


EXCERPT_WIDTH = 120  # characters of a source line shown around the caret: a 2 MB line is not echoed whole


def _excerpt(line: str, caret: int) -> tuple[str, int]:
    """At most EXCERPT_WIDTH characters of `line` around index `caret`, "..." where cut; the caret's new index."""
    if len(line) <= EXCERPT_WIDTH:
        return line, caret
    start = min(max(0, caret - EXCERPT_WIDTH // 2), len(line) - EXCERPT_WIDTH)
    head, tail = ("..." if start else ""), ("..." if start + EXCERPT_WIDTH < len(line) else "")
    return head + line[start:start + EXCERPT_WIDTH] + tail, caret - start + len(head)


class PlanError(SmtprunError):
    """A plan cannot be used: bad YAML, schema violation, bad regex, unknown variable."""

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(p.render() for p in self.problems))


class RenderError(SmtprunError):
    """A template failed while rendering: unknown name, forbidden access, bad expression."""

    def __init__(self, message: str, forbidden: bool = False):
        super().__init__(message)
        self.forbidden = forbidden  # the sandbox refused it: a plan error, whatever the values


class OutputTooLarge(RenderError):
    """A template rendered past the characters allowed where it is used."""

    def __init__(self, limit: int):
        super().__init__(f"template renders to more than {limit} characters", forbidden=True)
        self.limit = limit


class UsageError(SmtprunError):
    """The command line is wrong."""


class ProtocolError(SmtprunError):
    """The server broke the SMTP reply grammar or a limit smtprun enforces.

    The message is smtprun's own words. The text that broke the grammar is kept apart, as it came,
    in `excerpt`: it may echo a secret, and only the display layer, which knows the secrets, masks
    and then escapes it (`describe`).
    """

    def __init__(self, message: str, received: bytes = b"", excerpt: str | None = None):
        super().__init__(message)
        self.received = received  # the offending bytes, bounded, for the transcript
        self.excerpt = excerpt  # the offending reply line's text, raw: never shown but through describe()

    def describe(self, show: Callable[[str], str]) -> str:
        """The message and, when there is one, the offending text as `show` writes it."""
        return str(self) if self.excerpt is None else f"{self}: {show(self.excerpt)}"


class StepFailed(SmtprunError):
    """A step did not get what it expected, or could not be carried out; ends its case."""

    def __init__(self, reason: str, reply: object | None = None):
        super().__init__(reason)
        self.reason = reason
        self.reply = reply  # the Reply that failed the step, when one came


class ReportError(SmtprunError):
    """A report could not be written."""


class ConnectionLost(SmtprunError):
    """The server closed or reset the connection when smtprun needed it open."""


class ServerError(SmtprunError):
    """The embedded server could not start (the port is taken, the address is not ours, ...)."""


class WorkerError(SmtprunError):
    """A worker process (`--workers`) could not start, ended, or did not answer in time."""
