"""The `message:` step: a message built from the plan's parts (runner.mail.compose), its attachments read from
files beside the plan, DKIM-signed when `dkim:` is given, and sent as the body after DATA's 354, as `data:` is.

The transcript shows the header section as sent and the MIME structure with each part's size, not the base64.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from runner.errors import StepFailed
from runner.files import inside, open_regular
from runner.mail import compose
from runner.plan import options
from runner.plan.types import Step
from runner.results import StepResult
from runner.run.context import StepContext
from runner.run.dkimsign import read_key
from runner.template import is_template
from runner.text import CONTROLS, printable

__all__ = ["do_message"]


@dataclass(frozen=True)
class _File:
    """An attachment's file: its path as written (a template unrendered)."""

    path: str


@dataclass(frozen=True)
class MessageOptions:
    """A `message:` step's options, its templates rendered (the files not yet read)."""

    parts: compose.Parts  # everything but the attachments' bytes
    attachments: tuple[tuple[_File, str, str], ...]  # (file, name, type); "" where not given
    dkim: tuple[str, str, str] | None  # (domain, selector, key file as written)


def _options(session: StepContext, given: options.Message) -> MessageOptions:
    """The step's options (runner.plan.options.Message), each string rendered in the step's scope."""
    def text(value: str | None) -> str:
        return session.text(value) if value else ""

    parts = compose.Parts(
        sender=text(given.sender), to=tuple(text(item) for item in given.to), subject=text(given.subject),
        headers=tuple((name, text(value)) for name, value in given.headers),
        text=None if given.text is None else text(given.text), html=None if given.html is None else text(given.html))
    attachments = tuple((_File(item.path), text(item.name), text(item.type)) for item in given.attachments)
    dkim = given.dkim
    signing = (text(dkim.domain), text(dkim.selector), dkim.key) if dkim else None
    return MessageOptions(parts, attachments, signing)


async def do_message(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    opts = _options(session, step.value)
    out.label = "message"
    attachments = _attachments(session, step, opts)
    try:
        msg = compose.build(replace(opts.parts, attachments=attachments), session.message_id, session.smtputf8)
        raw = msg.as_bytes()
        if opts.dkim is not None:
            domain, selector, key = opts.dkim
            raw = compose.sign(raw, domain, selector, read_key(session, step, key))
    except compose.MessageError as exc:
        raise StepFailed(f"message: {exc}") from None
    signed = f", DKIM-signed d={opts.dkim[0]} s={opts.dkim[1]}" if opts.dkim else ""
    out.label = (f"message built ({len(raw)} bytes, {len(attachments)} attachment"
                 f"{'' if len(attachments) == 1 else 's'}{signed})")
    for line in compose.describe(msg):
        session.note(f"message part: {line}")
    await session.send_stream([raw], deadline, "message", shown_bytes=compose.header_size(raw))
    return False


def _attachments(session: StepContext, step: Step, opts: MessageOptions) -> tuple[compose.Attachment, ...]:
    """The attachments' files read, at most MAX_ATTACHMENT_BYTES for all of them together."""
    out, room = [], compose.MAX_ATTACHMENT_BYTES
    for file, name, kind in opts.attachments:
        data = _read(session, step, file, room)
        room -= len(data)
        shown = name or os.path.basename(session.text(file.path))
        out.append(compose.Attachment(shown, compose.content_type(shown, kind), data))
    return tuple(out)


def _read(session: StepContext, step: Step, file: _File, most: int) -> bytes:
    """An attachment's file, at most `most` bytes. A literal path was resolved (and checked) as the plan was
    read; a templated one is relative to the file that names it, and must lie in its folder: it is sent."""
    path = session.text(file.path)
    try:
        if is_template(file.path) and step.file:
            folder = os.path.dirname(step.file)
            path = os.path.join(folder, path)
            if not inside(path, folder):
                raise StepFailed(f"attachment {_shown(path)} is outside the plan's folder: not sent")
        with open_regular(path) as fh:
            data = fh.read(most + 1)
    except OSError as exc:
        raise StepFailed(f"cannot read attachment {_shown(path)}: {exc.strerror or exc}") from None
    if len(data) > most:
        raise StepFailed(f"attachment {_shown(path)} takes the message past {compose.MAX_ATTACHMENT_BYTES} bytes "
                         "of attachments")
    return data


def _shown(path: str) -> str:
    return printable(path, CONTROLS, backslash=True)
