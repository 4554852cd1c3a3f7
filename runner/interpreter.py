"""Runs one case: its steps, in order, over one connection, judging every reply.

A step sends what the plan says (rendered, byte for byte), then, when it expects something,
reads one reply before its deadline and judges it. The first failed step ends the case; the
steps after it are reported as not run. Nothing here waits without a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import ssl
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from runner import expect as expectations
from runner import tls as tlsinfo
from runner.errors import ConnectionLost, ProtocolError, StepError
from runner.plan.model import Case, Plan, Step, Target
from runner.protocol import DataEncoder, Reply, ReplyParser, encode_line
from runner.redact import Redactor
from runner.results import FAILED, INFO, PASSED, RECV, SEND, SKIPPED, CaseResult, Event, StepResult
from runner.template import ENVIRON, RenderError, render
from runner.transport import Connection, open_connection

__all__ = ["run_case"]

MAX_EVENT_BYTES = 64 * 1024  # one transcript entry; a large body is shown cut, with its size
MAX_TRANSCRIPT_BYTES = 4 * 1024 * 1024
DATA_CHUNK = 64 * 1024
Listener = Callable[[str, str, bytes], None]  # (case name, direction, bytes) for -v


class StepFailed(Exception):
    def __init__(self, reason: str, reply: Reply | None = None):
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


class _Session:
    """What one case knows while it runs: the connection, the parser, variables, transcript."""

    def __init__(self, plan: Plan, case: Case, target: Target, variables: dict[str, Any],
                 redactor: Redactor, listener: Listener | None) -> None:
        self.plan, self.case, self.target = plan, case, target
        self.redactor = redactor
        self.listener = listener
        self.result = CaseResult(name=case.name, target=str(target), line=case.line)
        self.t0 = time.monotonic()
        self.conn: Connection | None = None
        self.parser = ReplyParser()
        self.vars: dict[str, Any] = {**variables, "env": ENVIRON, "ehlo": {}}
        self.transcript_bytes = 0

    # -- transcript -------------------------------------------------------------------------
    def record(self, direction: str, data: bytes) -> None:
        data = self.redactor.bytes(data)
        if self.listener is not None:
            self.listener(self.case.name, direction, data)
        if len(data) > MAX_EVENT_BYTES:
            data = data[:MAX_EVENT_BYTES] + f"... [{len(data) - MAX_EVENT_BYTES} more bytes]".encode()
        self.transcript_bytes += len(data)
        if self.transcript_bytes > MAX_TRANSCRIPT_BYTES:
            return
        self.result.transcript.append(Event(time.monotonic() - self.t0, direction, data))

    def note(self, text: str) -> None:
        self.record(INFO, text.encode("utf-8"))

    # -- wire -------------------------------------------------------------------------------
    def deadline(self, step: Step) -> float:
        return time.monotonic() + (step.timeout or self.target.timeout)

    async def connect(self) -> None:
        t = self.target
        deadline = time.monotonic() + t.timeout
        context = None
        if t.tls == "implicit":
            context = tlsinfo.client_context(t.verify, t.cafile)
        host = render(t.host or "", self.vars)
        self.note(f"connecting to {self.target}" + (" (implicit TLS)" if context else ""))
        try:
            self.conn = await open_connection(host, t.port, deadline, context, t.server_name)
        except asyncio.TimeoutError:
            raise StepFailed(f"connection to {self.target} timed out after {t.timeout:g}s") from None
        except ssl.SSLError as exc:
            raise StepFailed(tlsinfo.describe_failure(exc)) from None
        except OSError as exc:
            raise StepFailed(f"cannot connect to {self.target}: {exc.strerror or exc}") from None
        self.result.peer = self.conn.peer
        self.note(f"connected to {self.conn.peer}")
        if context is not None:
            self.result.tls = tlsinfo.session_facts(self.conn.tls_object, t.verify)

    async def send(self, data: bytes, deadline: float) -> None:
        assert self.conn is not None
        self.record(SEND, data)
        try:
            await self.conn.write(data, deadline)
        except asyncio.TimeoutError:
            raise StepFailed("timed out sending: the server is not reading") from None
        except (ConnectionLost, OSError) as exc:
            raise StepFailed(str(exc)) from None

    async def read_reply(self, deadline: float) -> Reply:
        assert self.conn is not None
        while True:
            try:
                reply = self.parser.next_reply()
            except ProtocolError as exc:
                self.record(RECV, exc.received)
                raise StepFailed(f"protocol error: {exc}") from None
            if reply is not None:
                self.record(RECV, reply.raw)
                return reply
            try:
                chunk = await self.conn.read(deadline)
            except asyncio.TimeoutError:
                partial = self.parser.pending
                if partial:
                    self.record(RECV, partial)
                    raise StepFailed(f"timed out mid-reply after {len(partial)} bytes") from None
                raise StepFailed("timed out waiting for a reply") from None
            if not chunk:
                partial = self.parser.pending
                if partial:
                    self.record(RECV, partial)
                    raise ConnectionLost(f"connection closed mid-reply after {len(partial)} bytes")
                raise ConnectionLost("connection closed by the server")
            self.parser.feed(chunk)

    async def wait_closed(self, deadline: float) -> None:
        """For `expect: closed`: the server must close before the deadline and say nothing more."""
        try:
            reply = await self.read_reply(deadline)
        except ConnectionLost as exc:
            if "mid-reply" in str(exc):
                raise StepFailed(str(exc)) from None
            self.note("server closed the connection")
            return
        except StepFailed as exc:
            if "timed out waiting" in exc.reason:
                raise StepFailed("expected the server to close the connection; it stayed open") from None
            raise
        raise StepFailed(f"expected the server to close the connection, got {reply.summary()}", reply)

    # -- steps ------------------------------------------------------------------------------
    def text(self, value: str) -> str:
        try:
            return render(value, self.vars)
        except RenderError as exc:
            raise StepFailed(str(exc)) from None

    async def run_step(self, step: Step, out: StepResult) -> None:
        deadline = self.deadline(step)
        act = step.action
        if act == "send":
            line = self.text(step.value)
            out.label = self.redactor.text(line)
            try:
                data = encode_line(line)
            except ValueError as exc:
                raise StepFailed(str(exc)) from None
            await self.send(data, deadline)
        elif act == "raw":
            data = self.text(step.value).encode("utf-8")
            out.label = self.redactor.text(repr(data.decode("utf-8"))[1:-1])
            await self.send(data, deadline)
        elif act == "data":
            body = self.text(step.value).encode("utf-8")
            out.label = f"message body ({len(body)} bytes)"
            await self.send_body(body, deadline)
        elif act == "sleep":
            out.label = f"sleep {step.value:g}s"
            await asyncio.sleep(step.value)
        elif act == "close":
            out.label = "close the connection"
            assert self.conn is not None
            self.conn.close()
            self.note("client closed the connection")
        elif act == "starttls":
            await self.starttls(step, out, deadline)
            return
        elif act == "auth":
            await self.auth(step, out, deadline)
            return
        else:
            out.label = "read a reply"
        if step.reads_reply:
            await self.judge(step, out, deadline, default=None)

    async def judge(self, step: Step, out: StepResult, deadline: float, default: Any) -> Reply | None:
        spec = step.expect if step.expect is not None else default
        out.expected = expectations.describe(spec) if spec is not None else None
        if spec == expectations.CLOSED:
            await self.wait_closed(deadline)
            return None
        try:
            reply = await self.read_reply(deadline)
        except ConnectionLost as exc:
            raise StepFailed(str(exc)) from None
        out.reply = reply
        why = expectations.check(spec, reply, self.vars)
        if why:
            raise StepFailed(why, reply)
        self.capture(step, reply, out)
        if out.label.upper().startswith(("EHLO", "LHLO")) and reply.code == 250:
            self.vars["ehlo"] = reply.keywords()
        return reply

    def capture(self, step: Step, reply: Reply, out: StepResult) -> None:
        for name, pattern in step.capture.items():
            rx = self.text(pattern)
            try:
                found = re.search(rx, reply.text)
            except re.error as exc:
                raise StepFailed(f"capture {name}: bad regex /{rx}/: {exc}", reply) from None
            if not found:
                raise StepFailed(f"capture {name}: /{rx}/ not found in {reply.summary()}", reply)
            value = found.group(1) if found.re.groups else found.group(0)
            self.vars[name] = value
            out.captures[name] = self.redactor.text(value or "")

    async def send_body(self, body: bytes, deadline: float) -> None:
        """Stream a body with dot-stuffing in chunks (RFC 5321 §4.5.2); recorded as one entry."""
        assert self.conn is not None
        encoder = DataEncoder()
        shown = bytearray()
        for i in range(0, max(len(body), 1), DATA_CHUNK):
            chunk = encoder.encode(body[i:i + DATA_CHUNK])
            if len(shown) <= MAX_EVENT_BYTES:
                shown += chunk[: MAX_EVENT_BYTES + 1 - len(shown)]
            await self._write(chunk, deadline)
        tail = encoder.end()
        shown += tail
        self.record(SEND, bytes(shown))
        await self._write(tail, deadline)

    async def _write(self, data: bytes, deadline: float) -> None:
        assert self.conn is not None
        try:
            await self.conn.write(data, deadline)
        except asyncio.TimeoutError:
            raise StepFailed("timed out sending: the server is not reading") from None
        except (ConnectionLost, OSError) as exc:
            raise StepFailed(str(exc)) from None

    async def starttls(self, step: Step, out: StepResult, deadline: float) -> None:
        opts = step.value or {}
        out.label = "STARTTLS"
        out.expected = "220, then a TLS handshake"
        await self.send(b"STARTTLS\r\n", deadline)
        try:
            reply = await self.read_reply(deadline)
        except ConnectionLost as exc:
            raise StepFailed(str(exc)) from None
        out.reply = reply
        if reply.code != 220:
            raise StepFailed(f"expected 220 to STARTTLS, got {reply.summary()}", reply)
        assert self.conn is not None
        injected = self.parser.pending + self.conn.buffered()
        self.parser = ReplyParser()
        if injected:
            self.record(RECV, injected)
            raise StepFailed(f"server sent {len(injected)} bytes of plaintext after its 220 to STARTTLS: "
                             "response injection (RFC 3207 §4.2, cf. CVE-2011-0411)", reply)
        verify = opts.get("verify", True)
        server_name = self.text(opts["server_name"]) if "server_name" in opts else render(self.target.host or "",
                                                                                          self.vars)
        try:
            context = tlsinfo.client_context(verify, opts.get("cafile"), opts.get("min_version"))
            await self.conn.start_tls(context, server_name, deadline)
        except (ssl.SSLError, asyncio.TimeoutError, OSError, ConnectionError) as exc:
            raise StepFailed(tlsinfo.describe_failure(exc), reply) from None
        facts = tlsinfo.session_facts(self.conn.tls_object, verify)
        self.result.tls = facts
        self.vars["ehlo"] = {}  # RFC 3207 §4.2: forget what was learned before TLS
        self.note(f"TLS established: {facts.get('version')} {facts.get('cipher')}"
                  + (f", certificate {facts['subject']}" if facts.get("subject") else ""))

    async def auth(self, step: Step, out: StepResult, deadline: float) -> None:
        """The whole AUTH exchange of RFC 4954; every credential form is registered as a secret."""
        opts = step.value
        mech = opts["mechanism"]
        user, password = self.text(opts["username"]), self.text(opts["password"])
        self.redactor.add(password)
        out.label = f"AUTH {mech} as {user}"
        if mech == "PLAIN":
            blob = f"\0{user}\0{password}".encode()
            self.redactor.add(blob)
            first, answers = f"AUTH PLAIN {base64.b64encode(blob).decode()}", []
        elif mech == "XOAUTH2":
            blob = f"user={user}\x01auth=Bearer {password}\x01\x01".encode()
            self.redactor.add(blob)
            first, answers = f"AUTH XOAUTH2 {base64.b64encode(blob).decode()}", []
        elif mech == "LOGIN":
            first, answers = "AUTH LOGIN", [lambda _c: user.encode(), lambda _c: password.encode()]
        else:  # CRAM-MD5, RFC 2195
            def cram(challenge: bytes) -> bytes:
                digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
                return f"{user} {digest}".encode()
            first, answers = "AUTH CRAM-MD5", [cram]
        await self.send(encode_line(first), deadline)
        for answer in answers:
            try:
                reply = await self.read_reply(deadline)
            except ConnectionLost as exc:
                raise StepFailed(str(exc)) from None
            out.reply = reply
            if reply.code != 334:
                break
            try:
                challenge = base64.b64decode(reply.lines[0].strip() or b"", validate=True)
            except ValueError:
                raise StepFailed(f"AUTH {mech}: challenge is not base64: {reply.summary()}", reply) from None
            response = base64.b64encode(answer(challenge))
            self.redactor.add(response, encoded=False)
            await self.send(response + b"\r\n", deadline)
        else:
            await self.judge(step, out, deadline, default=235)
            return
        why = expectations.check(step.expect if step.expect is not None else 235, out.reply, self.vars)
        if why:
            raise StepFailed(why, out.reply)


async def _run_steps(session: _Session) -> None:
    result = session.result
    steps = session.case.steps
    try:
        await session.connect()
    except StepFailed as exc:
        result.status, result.reason = FAILED, exc.reason
        for step in steps:
            result.steps.append(StepResult(step.index, step.line, step.action, _label(step), status=SKIPPED))
        result.steps[0].status, result.steps[0].reason = FAILED, exc.reason
        return
    for n, step in enumerate(steps):
        out = StepResult(step.index, step.line, step.action, _label(step), started=time.monotonic() - session.t0)
        result.steps.append(out)
        try:
            await session.run_step(step, out)
        except StepFailed as exc:
            out.status, out.reason = FAILED, session.redactor.text(exc.reason)
            out.reply = out.reply or exc.reply
            if out.expected is None and step.expect is not None:
                out.expected = expectations.describe(step.expect)
            result.status = FAILED
            result.reason = f"step {step.index} (line {step.line}): {out.reason}"
            result.steps.extend(StepResult(s.index, s.line, s.action, _label(s), status=SKIPPED)
                                for s in steps[n + 1:])
            return
        finally:
            out.duration = time.monotonic() - session.t0 - out.started


def _label(step: Step) -> str:
    if step.action in ("send", "raw") and isinstance(step.value, str):
        return step.value
    return step.name or step.action


async def run_case(
    plan: Plan,
    case: Case,
    target: Target,
    variables: dict[str, Any],
    redactor: Redactor,
    listener: Listener | None = None,
) -> CaseResult:
    """Run one case to its verdict. Never raises for anything the server or network does."""
    session = _Session(plan, case, target, variables, redactor, listener)
    session.result.started_at = datetime.now(timezone.utc)
    try:
        if target.session_timeout:
            await asyncio.wait_for(_run_steps(session), target.session_timeout)
        else:
            await _run_steps(session)
    except asyncio.TimeoutError:
        session.result.status = FAILED
        session.result.reason = f"session deadline of {target.session_timeout:g}s reached"
        for s in session.result.steps:
            if s.status == PASSED and s is session.result.steps[-1]:
                s.status, s.reason = FAILED, session.result.reason
    except StepError as exc:
        session.result.status, session.result.reason = FAILED, str(exc)
    finally:
        if session.conn is not None:
            session.conn.abort() if session.result.status == FAILED else session.conn.close()
        session.result.duration = time.monotonic() - session.t0
    return session.result
