"""DKIM signatures made as a step runs (RFC 6376, dkimpy through runner.mail.compose.sign): the private key file
that `message:`'s `dkim:` and the step's `dkim:` beside `data:` or `data_file:` name, and a body signed as the
server receives it — line ends CRLF, before dot-stuffing — with the DKIM-Signature field put on top.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable

from runner.errors import StepFailed
from runner.files import open_regular
from runner.plan.options import MessageDkim
from runner.plan.types import Step
from runner.run.context import StepContext
from runner.template import is_template
from runner.text import CONTROLS, printable

__all__ = ["MAX_KEY_BYTES", "read_key", "sign_body", "whole"]

MAX_KEY_BYTES = 64 * 1024  # a PEM private key: an RSA 8192-bit one is under 7 KiB


def _shown(path: str) -> str:
    return printable(path, CONTROLS, backslash=True)


def read_key(session: StepContext, step: Step, written: str) -> bytes:
    """The key file, at most MAX_KEY_BYTES. A literal path was resolved and checked as the plan was read; a
    templated one is relative to the file that names it. It is read, never sent: it may lie anywhere."""
    path = session.text(written)
    if is_template(written) and step.file:
        path = os.path.join(os.path.dirname(step.file), path)
    try:
        with open_regular(path) as fh:
            data = fh.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise StepFailed(f"cannot read dkim key {_shown(path)}: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_BYTES:
        raise StepFailed(f"dkim key {_shown(path)} is larger than {MAX_KEY_BYTES} bytes: no PEM key")
    return data


def whole(chunks: Iterable[bytes], shown: str) -> bytes:
    """A data_file's chunks joined, to be signed: at most compose.MAX_SIGNED_BYTES."""
    from runner.mail.compose import MAX_SIGNED_BYTES

    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > MAX_SIGNED_BYTES:
            raise StepFailed(f"data_file {shown} is larger than {MAX_SIGNED_BYTES} bytes, the most smtprun "
                             "reads whole to sign with dkim: (send it unsigned, or sign it beforehand)")
    return bytes(data)


async def sign_body(session: StepContext, step: Step, body: bytes) -> tuple[bytes, str]:
    """The body as the server will receive it with a DKIM-Signature field on top, and the words for the step's
    label. Signed in a thread: dkimpy takes 1.6 s for 32 MiB, and other cases share the event loop."""
    from runner.mail import compose
    from runner.smtp.protocol import as_received

    dkim: MessageDkim = step.dkim  # type: ignore[assignment]
    domain, selector = session.text(dkim.domain), session.text(dkim.selector)
    key = read_key(session, step, dkim.key)
    received = as_received(body)
    try:
        signed = await asyncio.to_thread(compose.sign, received, domain, selector, key)
    except compose.MessageError as exc:
        raise StepFailed(f"{step.action}: {exc}") from None
    said = f"DKIM-signed d={domain} s={selector}"
    session.note(f"DKIM-signed: d={domain} s={selector}, over the {len(received)} bytes the server receives "
                 "(CRLF line ends, before dot-stuffing); the DKIM-Signature field is put on top")
    return signed, said
