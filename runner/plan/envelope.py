"""Envelope commands a plan sends as written, but a strict server refuses: the path without "<" ">".

RFC 5321 §4.1.2: `Reverse-path = Path / "<>"`, `Forward-path = Path`, `Path = "<" [ A-d-l ":" ] Mailbox ">"`.
Postfix and Exim take `MAIL FROM:user@example.com` by default; OpenSMTPD answers `553 5.1.0 Sender
address syntax error`, and Postfix with `strict_rfc821_envelopes = yes` `501 5.1.7 Bad sender address syntax`.
A plan may mean to send such a line (a test of that very strictness), so this is a warning, never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from runner import template
from runner.errors import Problem
from runner.plan.load import Loaded
from runner.plan.scope import render_early

__all__ = ["REFUSALS", "Unbracketed", "envelope_warning", "unbracketed_path"]

# Spaces after the colon are tolerated by Postfix, Exim and OpenSMTPD alike (RFC 5321 §3.3 allows none).
_COMMAND = re.compile(r"(?i)(MAIL FROM|RCPT TO):( *)(?=\S)")


# What a strict server answers (OpenSMTPD 7.4 measured here; Postfix's with strict_rfc821_envelopes = yes).
REFUSALS = {"MAIL FROM": "553 5.1.0 or 501 5.1.7", "RCPT TO": "501 5.1.3"}


@dataclass(frozen=True)
class Unbracketed:
    verb: str  # "MAIL FROM" or "RCPT TO"
    start: int  # where the path starts in the command
    path: str  # the path as written (templates too), up to the first space outside {{ }}: parameters follow

    @property
    def fixed(self) -> str:
        """The command's start as RFC 5321 writes it: no space after the colon, the path in brackets."""
        return f"{self.verb}:<{self.path}>"


def unbracketed_path(command: str) -> Unbracketed | None:
    """The MAIL FROM or RCPT TO path of `command` when it is not inside "<" ">", else None."""
    m = _COMMAND.match(command)
    if m is None or command[m.end()] == "<":
        return None
    end, depth = m.end(), 0
    while end < len(command) and (depth or command[end] != " "):
        pair = command[end:end + 2]
        depth += (pair == "{{") - (pair == "}}")
        end += 2 if pair in ("{{", "}}") else 1
    return Unbracketed(m[1].upper(), m.end(), command[m.end():end])


def envelope_warning(loaded: Loaded, command: str, path: tuple[Any, ...], values: dict[str, Any],
                     unsettled: set[str]) -> Problem | None:
    """The warning for a MAIL FROM or RCPT TO path without "<" ">" in `command` at `path` of `loaded`, rendered
    first when the plan's `values` settle it (none of `unsettled`, known only per case); smtprun still sends the
    line as written."""
    found = unbracketed_path(command)
    sent = command
    if found is not None and template.is_template(command):
        try:
            used = template.names_used(command) - template.BUILTIN_NAMES
            settled = not (used - set(values) or used & unsettled)
            sent = render_early(command, values) if settled else ""
        except template.RenderError:
            sent = ""
    shown = unbracketed_path(sent) if found is not None else None
    if found is None or shown is None or template.is_template(sent):
        return None
    line, col = loaded.where(path) or (1, 1)
    source = loaded.source.lines[line - 1] if 0 < line <= len(loaded.source.lines) else ""
    at = source.find(command[:found.start], col - 1)
    warning = loaded.source.problem(
        f"{found.verb} without angle brackets: a strict server answers {REFUSALS[found.verb]} "
        '(RFC 5321 §4.1.2 wants "<" path ">")', line, at + found.start + 1 if at >= 0 else col,
        hint=f"write {found.fixed}; smtprun sends the line as written")
    warning.severity = "warning"
    return warning
