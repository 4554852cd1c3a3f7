"""Envelope commands a plan sends as written, but a strict server refuses: the path without "<" ">".

RFC 5321 §4.1.2: `Reverse-path = Path / "<>"`, `Forward-path = Path`, `Path = "<" [ A-d-l ":" ] Mailbox ">"`.
Postfix and Exim take `MAIL FROM:user@example.com` by default; OpenSMTPD answers `553 5.1.0 Sender
address syntax error`, and Postfix with `strict_rfc821_envelopes = yes` `501 5.1.7 Bad sender address syntax`.
A plan may mean to send such a line (a test of that very strictness), so this is a warning, never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["REFUSALS", "Unbracketed", "unbracketed_path"]

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
