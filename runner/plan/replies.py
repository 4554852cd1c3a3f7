"""Replies a case leaves unread, found before anything is sent.

A step without `expect:` or `capture:` reads no reply, and the next one read is its reply. When the
next step to read one is a step that judges the reply to its own command, the run fails there
(runner.run.unread); a reply that is never read, while later steps go on sending, is a message whose
verdict nobody looked at. Both are warnings here, on the step whose reply goes unread. A `send: "."`
after a body step is the same mistake typed another way (Microsoft KB 153119 ends the body with a
lone "." by hand): the body step already ended the message with CRLF.CRLF (RFC 5321 §4.1.1.4), so
the "." reaches the server as a command.

Reading a reply with an `expect:` step of its own is how a plan says it means to read it later
(pipelining by hand); `pipeline:` reads its own; after `raw:`, `smuggle:` or `close:` the replies
cannot be counted, and nothing more is said. The banner is no step's reply (early-talker tests send
before it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from runner.plan.actions import named
from runner.plan.types import Step

__all__ = ["JUDGES_OWN", "Finding", "answers_own_command", "unread_replies"]

JUDGES_OWN = named("judges_own")  # they read the replies they cause
COMMANDS = named("command")  # they read one reply when given expect/capture
BODIES = named("ends_data")  # each ends with CRLF.CRLF (runner.smtp.protocol.DataEncoder)
_UNCOUNTED = named("uncounted")  # after these, which reply answers what is not known


def answers_own_command(step: Step) -> bool:
    """Whether a step sends something and judges the reply to it."""
    return step.action in JUDGES_OWN or (step.action in COMMANDS and step.reads_reply)


@dataclass(frozen=True)
class Finding:
    step: Step  # where the warning points
    message: str
    hint: str


def unread_replies(steps: Sequence[Step]) -> list[Finding]:
    """What a case's steps (its `finally:` steps after them) leave unread, in step order."""
    found = [_stray_dot(before, step) for before, step in pairwise(steps) if _is_stray_dot(before, step)]
    owed: list[Step] = []  # steps whose reply is still to be read, oldest first
    sent_after: dict[int, Step] = {}  # index of an owed step -> the first step that sent after it
    for step in steps:
        if step.action == "expect" and step.reads_reply and step.expect != "closed":
            del owed[:1]  # a reply read on purpose: the oldest owed
        elif answers_own_command(step):
            if owed:
                found.append(_misjudged(owed[0], step))
            owed.clear()  # the run fails here: nothing more to say of those
        elif step.action in COMMANDS:
            for earlier in owed:
                sent_after.setdefault(earlier.index, step)
            owed.append(step)
        if step.action in _UNCOUNTED or step.expect == "closed":
            owed.clear()
            break
    found += [_never_read(step, sent_after[step.index]) for step in owed if step.index in sent_after]
    return sorted(found, key=lambda f: f.step.index)


def _what(step: Step) -> str:
    if step.action in BODIES:
        return f"{step.action}: without expect: the server's answer to the message"
    line = str(step.value)
    return f"send: {line if len(line) <= 60 else line[:57] + '...'} without expect: its reply"


def _misjudged(unread: Step, reader: Step) -> Finding:
    return Finding(unread, f"{_what(unread)} is not read here, so step {reader.index} (line {reader.line}) would "
                           "take it for the reply to its own command: the run fails at that step",
                   f"give this step its expect: ({_usual(unread)}), or read the reply with an expect: step after it")


def _never_read(unread: Step, later: Step) -> Finding:
    return Finding(unread, f"{_what(unread)} is never read, and step {later.index} (line {later.line}) sends "
                           "after it: nothing judges it",
                   f"give this step its expect: ({_usual(unread)}), or read the reply with an expect: step")


def _usual(step: Step) -> str:
    """The reply a plan usually expects of the step: a hint, not a rule."""
    verb = str(step.value).split(" ", 1)[0].upper() if step.action == "send" else ""
    return {"DATA": "354", "QUIT": "221", "EHLO": "250", "HELO": "250"}.get(verb, "250")


def _is_stray_dot(before: Step, step: Step) -> bool:
    return before.action in BODIES and step.action == "send" and str(step.value).strip() == "."


def _stray_dot(before: Step, step: Step) -> Finding:
    return Finding(step, f'send: "." right after the {before.action}: step {before.index}, which already ended '
                         "the message with <CRLF>.<CRLF> (RFC 5321 §4.1.1.4): this \".\" reaches the server as a "
                         "command (Postfix logs \"non-SMTP command\", answers 221 and closes)",
                   f"remove this step, and move its expect: to step {before.index}" if step.expect is not None
                   else f"remove this step (give step {before.index} expect: 250 to judge the message)")
