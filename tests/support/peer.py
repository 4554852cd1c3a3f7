"""A scripted SMTP server in memory: the Transport the engine is given, with no socket.

A script is what the server does, in order: `Say` bytes (each Say arrives as one read, so a
reply can be split anywhere), `Expect` the client's exact bytes, `Pause` (nothing arrives for a
while; real time, keep it short), `Close`, `Reset`, or a `Handshake` for STARTTLS or implicit
TLS (flagged and given fake certificate facts; no cryptography). At the end of the script the
server goes silent: reads wait until their deadline.

    server = ScriptedServer([Say(b"220 test ESMTP\\r\\n"), Expect(b"QUIT\\r\\n"), Say(b"221 bye\\r\\n"), Close()])
    result = await run_case(CaseRun(plan, case, plan.target, Scope.for_plan(plan), connect=server.connect))
    server.assert_done()

Bytes the server has sent without waiting (Says up to the next Expect or Pause, and a Close
right after them) have arrived at once: `buffered()` returns them, as a real connection would
once the network delivered them. A client that sends what the script did not expect gets an
AssertionError from `write` (the engine reports it as an internal error) and `assert_done`
says what differed.
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from runner.errors import ConnectionLost
from runner.net.tls import CLOSED_IN_HANDSHAKE

__all__ = ["Close", "Expect", "FakeTLS", "Handshake", "Pause", "Reset", "Say", "ScriptedConnection",
           "ScriptedServer", "body"]


@dataclass
class Say:
    data: bytes


@dataclass
class Expect:
    """The client's next bytes: exactly `data`, or with `until`, anything up to and including it."""

    data: bytes = b""
    until: bytes | None = None


@dataclass
class Pause:
    seconds: float


@dataclass
class Close:
    pass


@dataclass
class Reset:
    pass


@dataclass
class Handshake:
    """The client's TLS handshake, succeeding with these facts, or raising `fail`."""

    version: str = "TLSv1.3"
    cipher: str = "TLS_AES_256_GCM_SHA384"
    subject: str = "mx.peer.test"
    san: tuple[str, ...] = ("mx.peer.test",)
    not_after: str = "Jan  1 00:00:00 2099 GMT"
    fail: BaseException | None = None


Action = Say | Expect | Pause | Close | Reset | Handshake


def body(until: bytes = b"\r\n.\r\n") -> Expect:
    """A message body of any content, up to its terminator (RFC 5321 §4.1.1.4)."""
    return Expect(until=until)


class FakeTLS:
    """The parts of ssl.SSLObject that runner.net.tls.session_facts reads."""

    def __init__(self, hs: Handshake, server_name: str | None) -> None:
        self.hs, self.server_name = hs, server_name

    def version(self) -> str:
        return self.hs.version

    def cipher(self) -> tuple[str, str, int]:
        return self.hs.cipher, self.hs.version, 256

    def getpeercert(self, binary_form: bool = False) -> Any:
        if binary_form:
            return b""
        return {
            "subject": ((("commonName", self.hs.subject),),),
            "issuer": ((("commonName", "Peer Test CA"),),),
            "subjectAltName": tuple(("DNS", name) for name in self.hs.san),
            "notBefore": "Jan  1 00:00:00 2020 GMT",
            "notAfter": self.hs.not_after,
        }


class ScriptedConnection:
    """One connection playing one script; meets runner.net.transport.Transport."""

    def __init__(self, script: list[Action], peer: str) -> None:
        self.script: deque[Action] = deque(script)
        self.peer = peer
        self.local: str | None = None  # the source address it was opened from, if one was given
        self.tls_object: FakeTLS | None = None
        self.siblings = 0
        self.on_closed: list = []
        self.writes: list[bytes] = []  # each write the client made, as made
        self.mismatch: str | None = None
        self.client_closed = self.aborted = False
        self._arrived: deque[bytes] = deque()  # sent by the server, not yet read
        self._from_client = bytearray()  # written by the client, not yet matched
        self._eof = self._reset = False

    # -- the script ------------------------------------------------------------------------
    def _advance(self) -> None:
        """Take the client's bytes against Expects; let the server's Says (and a Close) arrive."""
        while self.script and self.mismatch is None:
            action = self.script[0]
            if isinstance(action, Expect):
                if not self._take(action):
                    return
            elif isinstance(action, Say):
                self._arrived.append(action.data)
            elif isinstance(action, Close):
                self._eof = True
            else:
                return
            self.script.popleft()

    def _take(self, expect: Expect) -> bool:
        got = bytes(self._from_client)
        if expect.until is not None:
            end = got.find(expect.until)
            if end < 0:
                return False
            del self._from_client[: end + len(expect.until)]
            return True
        if got.startswith(expect.data):
            del self._from_client[: len(expect.data)]
            return True
        if got and not expect.data.startswith(got):
            self.mismatch = f"expected {expect.data!r}, the client sent {got!r}"
            raise AssertionError(self.mismatch)
        return False

    async def _until(self, deadline: float) -> bytes:
        """The server says nothing more: wait out the deadline."""
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        raise asyncio.TimeoutError

    # -- Transport ---------------------------------------------------------------------------
    async def read(self, deadline: float) -> bytes:
        while True:
            self._advance()
            if self._arrived:
                return self._arrived.popleft()
            if self._eof:
                return b""
            action = self.script[0] if self.script else None
            if isinstance(action, Reset):
                self._eof = self._reset = True
                raise ConnectionLost(f"connection reset by the server ({os.strerror(errno.ECONNRESET)})")
            if not isinstance(action, Pause):  # waiting for the client, or the script is over
                return await self._until(deadline)
            left = deadline - time.monotonic()
            if action.seconds > left:
                await asyncio.sleep(max(0.0, left))
                action.seconds -= max(0.0, left)
                raise asyncio.TimeoutError
            await asyncio.sleep(action.seconds)
            self.script.popleft()

    def buffered(self) -> bytes:
        self._advance()
        data = b"".join(self._arrived)
        self._arrived.clear()
        return data

    async def write(self, data: bytes, deadline: float) -> None:
        self._advance()
        if self._eof or self.client_closed:
            raise ConnectionLost("the connection is closed: nothing more can be sent")
        self.writes.append(data)
        self._from_client += data
        self._advance()

    async def start_tls(self, context: Any, server_name: str | None, deadline: float) -> None:
        self._advance()
        action = self.script[0] if self.script else None
        if isinstance(action, (Close, Reset)) or self._eof:
            raise ConnectionLost(CLOSED_IN_HANDSHAKE)
        if not isinstance(action, Handshake):  # a server that never answers the handshake
            await self._until(deadline)
            return
        self.script.popleft()
        if action.fail is not None:
            raise action.fail
        self.tls_object = FakeTLS(action, server_name)

    @property
    def closed(self) -> bool:
        self._advance()
        return self._eof or self.client_closed

    def close(self) -> None:
        self.client_closed = True

    def abort(self) -> None:
        self.client_closed = self.aborted = True

    async def shut(self, clean: bool) -> None:
        self.close() if clean else self.abort()
        hooks, self.on_closed = self.on_closed, []
        for hook in hooks:
            hook()

    @property
    def sent(self) -> bytes:
        """Everything the client wrote."""
        return b"".join(self.writes)


class ScriptedServer:
    """Plays one script per connection, in order; an exception in place of a script is raised
    by that connection attempt (e.g. ConnectionRefusedError). Its `connect` is a Connector."""

    def __init__(self, *scripts: list[Action] | BaseException, peer: str = "192.0.2.25:25") -> None:
        self.scripts = list(scripts)
        self.peer = peer
        self.connections: list[ScriptedConnection] = []
        self.attempts: list[tuple[str, int, str | None]] = []  # (host, port, TLS server name)
        self.sources: list[str | None] = []  # the source address each attempt was given

    async def connect(self, host: str, port: int, deadline: float, tls: Any = None,
                      server_name: str | None = None, *, source: str | None = None) -> ScriptedConnection:
        self.attempts.append((host, port, server_name))
        self.sources.append(source)
        if not self.scripts:
            raise ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
        script = self.scripts.pop(0)
        if isinstance(script, BaseException):
            raise script
        conn = ScriptedConnection(script, self.peer)
        conn.local = source
        self.connections.append(conn)
        if tls is not None:  # implicit TLS (RFC 8314): the handshake comes first
            await conn.start_tls(tls, server_name or host, deadline)
        return conn

    def assert_done(self) -> None:
        """Every script played to its end, every byte the client sent expected."""
        for n, conn in enumerate(self.connections, start=1):
            assert conn.mismatch is None, f"connection {n}: {conn.mismatch}"
            left = [a for a in conn.script if not isinstance(a, (Close, Pause))]
            assert not left, f"connection {n}: script not played to its end: {left}"
            extra = bytes(conn._from_client)
            assert not extra, f"connection {n}: unexpected bytes from the client: {extra!r}"
        assert not self.scripts, f"{len(self.scripts)} scripts never connected"
