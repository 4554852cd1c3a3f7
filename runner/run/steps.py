"""What each step action does on the wire. One function per action, chosen by name.

Each takes the running case as a StepContext (runner/run/context.py), the Step, its StepResult
and the step's deadline, and returns True when it judged its own replies (STARTTLS, AUTH,
PIPELINING, BDAT), False to let the interpreter read and judge the step's one reply as usual.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import importlib
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from runner.errors import StepFailed
from runner.files import inside, open_regular
from runner.plan.actions import KINDS
from runner.plan.types import Step
from runner.results import StepResult
from runner.run.context import StepContext
from runner.smtp import expect as expectations
from runner.smtp.protocol import Reply, encode_line
from runner.template import is_template
from runner.text import CONTROLS, printable

if TYPE_CHECKING:
    from runner.plan.options import Auth, Bdat, Raw

__all__ = ["ACTIONS"]

FILE_CHUNK = 64 * 1024
HEADER_LOOK = 1024 * 1024  # bytes of a data_file read for its header section (RFC 5322 §2.1 sets no bound)
_FILLER = b"smtprun generated body: the quick brown fox jumps over the lazy dog 0123456789\r\n"

Action = Callable[[StepContext, Step, StepResult, float], Awaitable[bool]]


def _line(text: str) -> bytes:
    try:
        return encode_line(text)
    except ValueError as exc:
        raise StepFailed(str(exc)) from None


MAX_LABEL = 300  # characters of a sent line kept as the step's label; the transcript has the bytes
_LABEL_SOURCE = 64 * 1024  # characters of a long line read for its label: past any secret, short of a copy of it all


def _label(session: StepContext, text: str, escape: bool = False) -> str:
    """The start of a sent text as the step's label, secrets masked (on the raw text) before it is cut."""
    shown = session.redactor.text(text[:_LABEL_SOURCE])
    if escape:
        shown = repr(shown)[1:-1]
    if len(shown) <= MAX_LABEL and len(text) <= _LABEL_SOURCE:
        return shown
    return f"{shown[:MAX_LABEL]}… ({len(text)} characters in all)"


async def do_send(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    line = session.text(step.value)
    out.label = _label(session, line)
    await session.send(_line(line), deadline)
    return False


async def do_raw(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    """Bytes exactly as given; a list is sent piece by piece, each its own write, `{pause: s}` between."""
    if isinstance(step.value, str):
        text = session.text(step.value)
        out.label = _label(session, text, escape=True)
        await session.send(text.encode("utf-8"), deadline, replies=None)
        return False
    from runner.plan.options import Pause
    from runner.run.smuggle import check_pauses, pause  # the pieces are paced as smuggle: paces its own

    raw: Raw = step.value
    parts = [item if isinstance(item, Pause) else session.text(item) for item in raw.pieces]
    shown = " ".join(f"[pause {p.seconds:g}s]" if isinstance(p, Pause) else _label(session, p, escape=True)
                     for p in parts)
    out.label = shown if len(shown) <= MAX_LABEL else f"{shown[:MAX_LABEL]}… ({len(parts)} pieces)"
    check_pauses(step.action, sum(p.seconds for p in parts if isinstance(p, Pause)), deadline)
    for part in parts:
        if isinstance(part, Pause):
            await pause(part.seconds, deadline)
        else:
            await session.send(part.encode("utf-8"), deadline, replies=None)
    return False


def _with_message_id(session: StepContext, body: bytes) -> tuple[bytes, str]:
    """A body a later step finds by Message-ID gets the case's own when it has none (said in the transcript)."""
    if not session.wants_message_id:  # a case without mail steps loads nothing of runner.mail
        return body, ""
    from runner.mail import msgid

    if msgid.header_of(body):
        return body, ""
    session.note(f"added Message-ID: <{session.message_id}> to the message: a later step finds it by that")
    return msgid.add_header(body, session.message_id), ", Message-ID added"


async def _signed(session: StepContext, step: Step, body: bytes) -> tuple[bytes, str]:
    """The body DKIM-signed when the step has `dkim:` beside it (runner.run.dkimsign), and words for the label."""
    if step.dkim is None:
        return body, ""
    from runner.run.dkimsign import sign_body

    signed, said = await sign_body(session, step, body)
    return signed, f", {said}"


async def do_data(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    body, added = _with_message_id(session, session.text(step.value).encode("utf-8"))
    body, signed = await _signed(session, step, body)
    out.label = f"message body ({len(body)} bytes{added}{signed})"
    await session.send_stream([body], deadline, "body")
    return False


def _file_with_message_id(session: StepContext, chunks: Iterator[bytes], out: StepResult) -> Iterator[bytes]:
    """A data_file's chunks, its header section looked at first: a later step finds the message by
    Message-ID, so a file without one gets the case's, as `data:` does."""
    if not session.wants_message_id:
        yield from chunks
        return
    head = b""
    for chunk in chunks:
        head += chunk
        if b"\n\n" in head or b"\n\r\n" in head or len(head) >= HEADER_LOOK:  # the header section has ended
            break
    head, added = _with_message_id(session, head)
    out.label += added
    yield head
    yield from chunks


class _Overdue(Exception):
    """Reading a data file took past the step's deadline."""


def _file_chunks(fh: BinaryIO, deadline: float) -> Iterator[bytes]:
    """A regular file's bytes, chunk by chunk, each read started before the step's deadline."""
    while time.monotonic() < deadline:
        chunk = fh.read(FILE_CHUNK)
        if not chunk:
            return
        yield chunk
    raise _Overdue


async def do_data_file(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    path = session.text(step.value)
    shown = printable(path, CONTROLS, backslash=True)
    try:
        if is_template(step.value) and step.file:  # checked as the plan was read when it is a literal
            folder = os.path.dirname(step.file)
            path = os.path.join(folder, path)
            shown = printable(path, CONTROLS, backslash=True)
            if not inside(path, folder):
                raise StepFailed(f"data_file {shown} is outside the plan's folder: not sent")
        out.label = f"message body from {shown}"
        with open_regular(path) as fh:  # a FIFO or a device is refused here, never waited on
            chunks = _file_with_message_id(session, _file_chunks(fh, deadline), out)
            if step.dkim is not None:  # signed whole, so read whole (runner.run.dkimsign, bounded)
                from runner.run.dkimsign import whole

                body, signed = await _signed(session, step, whole(chunks, shown))
                chunks, out.label = iter((body,)), out.label + signed
            await session.send_stream(chunks, deadline, shown)
    except OSError as exc:
        raise StepFailed(f"cannot read data_file {shown}: {exc.strerror or exc}") from None
    except _Overdue:
        raise StepFailed(f"reading data_file {shown} took longer than the step's timeout") from None
    return False


def _generated(size: int, message_id: str = "") -> Iterator[bytes]:
    head = (f"Message-ID: <{message_id}>\r\n".encode() if message_id else b"") \
        + b"Subject: smtprun generated message\r\n\r\n"
    block = _FILLER * (FILE_CHUNK // len(_FILLER))
    yield head[:size]
    left = size - min(size, len(head))
    while left > 0:
        yield block[:left]
        left -= min(left, len(block))


async def do_data_size(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    out.label = f"generated message body ({step.value} bytes)"
    message_id = session.message_id if session.wants_message_id else ""  # a later step finds it by that
    await session.send_stream(_generated(step.value, message_id), deadline, "generated body")
    return False


async def do_sleep(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    out.label = f"sleep {step.value:g}s"
    await asyncio.sleep(step.value)
    return False


async def do_close(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    out.label = "close the connection"
    session.close()
    session.note_closed("client closed the connection")
    return False


async def do_starttls(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    """RFC 3207: STARTTLS, 220, no plaintext after it (§4.2, cf. CVE-2011-0411), handshake, forget. The client's
    TLS options (runner.run.tlsclient) are read and their files checked before STARTTLS is sent."""
    from runner.run import tlsclient

    out.label, out.expected = "STARTTLS", "220, then a TLS handshake"
    opts = tlsclient.starttls_options(step, session.target)
    name = session.text(opts.server_name or session.target.server_name or "") or session.server_host
    handshake = tlsclient.prepare(session.text, opts, name, os.path.dirname(step.file or ""))
    await session.send_starttls(deadline)
    reply = out.reply = await session.reply(deadline)
    if reply.code != 220:
        raise StepFailed(f"expected 220 to STARTTLS, got {reply.summary()}", reply)
    session.end_plaintext()
    await tlsclient.starttls_handshake(session, opts, handshake, deadline)  # the EHLO keywords are void after it
    return True


def _auth_plan(session: StepContext, mech: str, user: str, password: str) -> tuple[str, list[Callable[[bytes], bytes]]]:
    """The first line and the answers to each 334 challenge, for one SASL mechanism (RFC 4954)."""
    secret = session.redactor
    if mech == "PLAIN":  # RFC 4616
        blob = f"\0{user}\0{password}".encode()
        secret.add(blob)
        return f"AUTH PLAIN {base64.b64encode(blob).decode()}", []
    if mech == "XOAUTH2":
        blob = f"user={user}\x01auth=Bearer {password}\x01\x01".encode()
        secret.add(blob)
        return f"AUTH XOAUTH2 {base64.b64encode(blob).decode()}", [lambda _c: b""]  # 334 error -> empty line
    if mech == "LOGIN":
        return "AUTH LOGIN", [lambda _c: user.encode(), lambda _c: password.encode()]

    def cram(challenge: bytes) -> bytes:  # RFC 2195
        return f"{user} {hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()}".encode()

    return "AUTH CRAM-MD5", [cram]


async def do_auth(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    opts: Auth = step.value
    mech = opts.mechanism
    user, password = session.text(opts.username), session.text(opts.password)
    session.redactor.add(password)
    out.label = f"AUTH {mech} as {session.redactor.text(user)}"
    spec = step.expect if step.expect is not None else 235
    out.expected = expectations.describe(spec)
    first, answers = _auth_plan(session, mech, user, password)
    await session.send(_line(first), deadline)
    reply = out.reply = await session.reply(deadline)
    for answer in answers:
        if reply.code != 334:
            break
        try:
            challenge = base64.b64decode(reply.lines[0].strip(), validate=True)
        except ValueError:
            raise StepFailed(f"AUTH {mech}: challenge is not base64: {reply.summary()}", reply) from None
        response = base64.b64encode(answer(challenge))
        session.redactor.add(response, encoded=False)
        await session.send(response + b"\r\n", deadline)
        reply = out.reply = await session.reply(deadline)
    session.check(spec, reply)
    session.capture(step, reply, out)
    return True


async def do_pipeline(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    """RFC 2920: the whole group in one write, then one reply per command, judged in order."""
    items = step.value.items
    lines = [session.text(item.line) for item in items]
    out.label = " | ".join(session.redactor.text(line) for line in lines)
    if "PIPELINING" not in session.keywords:
        session.note("the last EHLO did not offer PIPELINING (RFC 2920)")
    out.expected = ", ".join("any" if i.expect is None else expectations.describe(i.expect) for i in items)
    await session.send(b"".join(_line(line) for line in lines), deadline, replies=len(lines))
    for n, (item, line) in enumerate(zip(items, lines, strict=True), start=1):
        reply = out.reply = await session.reply(deadline)
        session.learn(line, reply)  # pipelined RCPTs count for LMTP's replies to the end of data
        session.check(item.expect, reply, f"reply {n} of {len(lines)} ({session.redactor.text(line)}): ")
    return True


async def do_bdat(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    """RFC 3030: BDAT <size> [LAST] and exactly that many octets, no dot-stuffing, a reply each."""
    opts: Bdat = step.value
    text, size = opts.data, opts.chunk_size
    body = session.text(text).replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    body, _ = _with_message_id(session, body)
    size = size or max(len(body), 1)
    chunks = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    spec = step.expect if step.expect is not None else 250
    out.label, out.expected = f"BDAT {len(body)} bytes in {len(chunks)} chunk(s)", expectations.describe(spec)
    for n, chunk in enumerate(chunks, start=1):
        last = n == len(chunks)
        await session.send(f"BDAT {len(chunk)}{' LAST' if last else ''}\r\n".encode() + chunk, deadline)
        reply: Reply = await session.reply(deadline)
        out.reply = reply
        session.check(spec if last else "2xx", reply, f"chunk {n} of {len(chunks)}: ")
    session.accepted(out.reply)
    session.capture(step, out.reply, out)  # type: ignore[arg-type]
    return True


class _Runners(Mapping[str, Action]):
    """Step type -> the function that runs it: `do_<name>` in the module of runner.run its table row names
    (runner.plan.actions `runs_in`), imported the first time a plan uses that step type, so a run imports the
    TLS scanner or the SPF evaluator only when one of its plans asks for them."""

    def __init__(self) -> None:
        self._found: dict[str, Action] = {}

    def __getitem__(self, name: str) -> Action:
        if name not in self._found:
            kind = KINDS[name]  # KeyError for a name that is no step type, as a dict's
            module = importlib.import_module(f"runner.run.{kind.runs_in}")
            self._found[name] = getattr(module, f"do_{name}")
        return self._found[name]

    def get(self, name: str, default: Any = None) -> Any:  # once per step: the found ones without Mapping's detour
        found = self._found.get(name)
        if found is not None:
            return found
        return self[name] if name in KINDS else default

    def __iter__(self) -> Iterator[str]:
        return iter(KINDS)

    def __len__(self) -> int:
        return len(KINDS)


ACTIONS: Mapping[str, Action] = _Runners()
