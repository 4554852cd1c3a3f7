"""The thin asyncio layer: connect, write, read with a deadline, upgrade to TLS. No SMTP here.

Bytes read are handed to the sans-IO SMTP session by the caller. Reading pauses when a small
buffer is full, so a server streaming junk cannot grow memory; every wait has a deadline.

`Transport` is what the engine needs of a connection, and `Connector` what opens one: the engine
takes any pair (tests give it an in-memory peer); `open_connection` is the real one.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from runner.errors import ConnectionLost
from runner.net.address import hostport, ip_version
from runner.net.tls import CLOSED_IN_HANDSHAKE

__all__ = ["Connection", "Connector", "SourceUnusable", "Transport", "check_source", "closed_handle", "hostport",
           "open_connection", "open_unix_connection", "quiet_closed_transports"]

READ_HIGH_WATER = 256 * 1024  # pause reading past this many unread bytes
SHUT_WAIT = 1.0  # seconds a closing socket may take to flush what is still buffered


class _Wire(asyncio.Protocol):
    """Buffers what arrives and wakes the one reader or writer waiting, without a task per wait."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.closed = False
        self.error: BaseException | None = None
        self.can_write = True
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.gone = False  # the socket is really closed (connection_lost)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, deadline: float) -> None:
        """Until the next wake-up; asyncio.TimeoutError at `deadline` (time.monotonic, as the loop's clock)."""
        loop = asyncio.get_running_loop()
        if deadline <= loop.time():
            raise asyncio.TimeoutError
        waiter = self._waiter = loop.create_future()
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._wake()
        if len(self.buf) > READ_HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self.can_write = True
        self._wake()
        self.gone = True

    def pause_writing(self) -> None:
        self.can_write = False

    def resume_writing(self) -> None:
        self.can_write = True
        self._wake()

    def take(self) -> bytes:
        data = bytes(self.buf)
        self.buf.clear()
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()
        return data


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())


async def _until(awaitable, deadline: float):  # type: ignore[no-untyped-def]
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise asyncio.TimeoutError
    return await asyncio.wait_for(awaitable, remaining)


class SourceUnusable(OSError):
    """The source address cannot be bound (not on this machine: EADDRNOTAVAIL); nothing was sent."""


class Transport(Protocol):
    """One connection to a server, as the engine uses it. Every wait ends at a deadline
    (time.monotonic); asyncio.TimeoutError says it was reached."""

    peer: str  # host:port of the other end, as reports show it
    local: str | None  # the address this end connected from (with a source address), else None
    tls_object: ssl.SSLObject | None  # the TLS session in force, for certificate facts
    siblings: int  # other connections of the run to the same address, open when this one was made
    on_closed: list[Callable[[], None]]  # called once, when the connection is shut or aborted (its socket gone)

    async def read(self, deadline: float) -> bytes:
        """Whatever bytes have arrived (at least one), or b"" once the server has closed.
        ConnectionLost when the connection failed (reset, TLS error)."""
        ...

    async def write(self, data: bytes, deadline: float) -> None:
        """Send all of `data`; ConnectionLost or OSError when the server is gone."""
        ...

    async def start_tls(self, context: ssl.SSLContext, server_name: str | None, deadline: float) -> None:
        """Upgrade in place (RFC 3207 §4); ssl.SSLError, ConnectionLost, OSError when it fails."""
        ...

    def buffered(self) -> bytes:
        """Bytes received but not yet read, taken out of the buffer."""
        ...

    @property
    def closed(self) -> bool: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...

    async def shut(self, clean: bool) -> None:
        """Close (clean) or abort the connection and return once its socket is closed: a limit on
        connections at once (`--jobs`, an exporter's slots) then holds for the server too."""
        ...


class Connector(Protocol):
    """Opens a Transport before `deadline`, with TLS from the first byte when `tls` is given, from the
    local address `source` when one is given (only then is it passed). OSError (SourceUnusable for a
    source that cannot be bound), ssl.SSLError, asyncio.TimeoutError and ValueError (a bad host name) pass up."""

    def __call__(self, host: str, port: int, deadline: float, tls: ssl.SSLContext | None = None,
                 server_name: str | None = None, *, source: str | None = None) -> Awaitable[Transport]: ...


class Connection:
    """A Transport over an asyncio connection."""

    def __init__(self, wire: _Wire, peer: str, local: str | None = None) -> None:
        self._wire = wire
        self.peer = peer
        self.local = local
        self.tls_object: ssl.SSLObject | None = None
        self.siblings = 0
        self.on_closed: list[Callable[[], None]] = []

    @property
    def here(self) -> str | None:
        """The address this end has, as the server sees it (SPF's check_host() asks about it), source or not."""
        transport = self._wire.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        return sockname[0] if sockname else self.local

    async def read(self, deadline: float) -> bytes:
        """Whatever bytes have arrived (at least one), or b"" once the server has closed."""
        wire = self._wire
        while not wire.buf:
            if wire.closed:
                if isinstance(wire.error, ssl.SSLError):
                    raise ConnectionLost(f"the TLS session failed: {wire.error.reason or wire.error}")
                if isinstance(wire.error, OSError):
                    raise ConnectionLost(f"connection reset by the server ({_reason(wire.error)})")
                return b""
            await wire.wait(deadline)
        return wire.take()

    def buffered(self) -> bytes:
        """Bytes received but not yet read, taken out of the buffer."""
        return self._wire.take()

    async def write(self, data: bytes, deadline: float) -> None:
        wire = self._wire
        if wire.closed or wire.transport is None or wire.transport.is_closing():
            raise ConnectionLost("the connection is closed: nothing more can be sent")
        wire.transport.write(data)
        while not wire.can_write and not wire.closed:
            await wire.wait(deadline)
        if wire.closed and wire.error is not None:
            raise ConnectionLost(f"connection lost while sending: {wire.error}")

    async def start_tls(self, context: ssl.SSLContext, server_name: str | None, deadline: float) -> None:
        """Upgrade in place (RFC 3207 §4); the caller has already discarded plaintext leftovers."""
        wire = self._wire
        loop = asyncio.get_running_loop()
        assert wire.transport is not None
        if wire.closed or wire.transport.is_closing():  # a handshake on a closed socket: uvloop logs a traceback
            raise ConnectionLost("the server closed the connection before the TLS handshake")
        remaining = max(0.001, deadline - time.monotonic())
        try:
            new = await _until(
                loop.start_tls(wire.transport, wire, context, server_hostname=server_name,
                               ssl_handshake_timeout=remaining),
                deadline,
            )
        except BaseException:
            await self._after_failed_handshake()
            raise
        if new is None or wire.closed:  # the server hung up during the handshake
            raise ConnectionLost(CLOSED_IN_HANDSHAKE)
        wire.transport = new  # type: ignore[assignment]
        self.tls_object = new.get_extra_info("ssl_object")

    async def _after_failed_handshake(self) -> None:
        """asyncio's stock loop closes the socket of a handshake that failed or was cut short itself, and tells
        the TLS layer it had put in between, never this wire: the socket is gone once the loop has run its
        close (a turn or two), and shut() must not wait for a connection_lost that will not come."""
        wire = self._wire
        transport = wire.transport
        if transport is None or transport.get_protocol() is wire:  # uvloop hands the wire back: it hears the rest
            return
        transport.abort()
        for _ in range(2):
            await asyncio.sleep(0)
        wire.closed = wire.gone = True
        wire._wake()

    @property
    def closed(self) -> bool:
        return self._wire.closed

    def close(self) -> None:
        transport = self._wire.transport
        if transport is not None and not transport.is_closing():
            transport.close()
        self._wire.closed = True

    def abort(self) -> None:
        self._drop()
        self._gone()

    def _drop(self) -> None:
        if self._wire.transport is not None:
            self._wire.transport.abort()
        self._wire.closed = True

    async def shut(self, clean: bool) -> None:
        wire = self._wire
        try:
            if wire.transport is None:
                return
            self.close() if clean else self._drop()
            # a clean close first sends what is still buffered; a server not reading it is cut off
            if not await self._until_gone(SHUT_WAIT):
                wire.transport.abort()
                await self._until_gone(SHUT_WAIT)
        finally:
            self._gone()

    async def _until_gone(self, seconds: float) -> bool:
        """Wait (one future, one timer) until the socket is closed; False when `seconds` pass first."""
        wire, deadline = self._wire, time.monotonic() + seconds
        try:
            while not wire.gone:
                await wire.wait(deadline)
        except asyncio.TimeoutError:
            return False
        return True

    def _gone(self) -> None:
        hooks, self.on_closed = self.on_closed, []
        for hook in hooks:
            hook()


async def open_connection(
    host: str,
    port: int,
    deadline: float,
    tls: ssl.SSLContext | None = None,
    server_name: str | None = None,
    *,
    source: str | None = None,
) -> Connection:
    """Connect (and with `tls`, handshake) before `deadline`; OSError and TimeoutError pass up.
    With `source` (an IP address), connect from it: only to addresses of its family."""
    loop = asyncio.get_running_loop()
    wire = _Wire()
    remaining = max(0.001, deadline - time.monotonic())
    kwargs: dict[str, Any] = {}
    if tls is not None:
        name = host if server_name is None else server_name  # "": send no SNI (asyncio's own convention)
        kwargs = {"ssl": tls, "server_hostname": name, "ssl_handshake_timeout": remaining}
    if source is not None:
        kwargs.update(_bound(source))
    transport, _ = await _until(loop.create_connection(lambda: wire, host, port, **kwargs), deadline)
    try:
        peername = transport.get_extra_info("peername")
    except AttributeError:  # uvloop, when the socket is already gone
        peername = None
    if not peername:  # reset between the handshake and now: the socket is already gone
        transport.abort()
        raise ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))
    peer = hostport(peername[0], peername[1])
    local = None
    if source is not None:
        sockname = transport.get_extra_info("sockname")
        local = sockname[0] if sockname else source
    conn = Connection(wire, peer, local)
    if tls is not None:
        conn.tls_object = transport.get_extra_info("ssl_object")
    return conn


async def open_unix_connection(path: str, deadline: float) -> Connection:
    """Connect to the UNIX-domain socket at `path` before `deadline`; OSError and TimeoutError pass up."""
    loop = asyncio.get_running_loop()
    wire = _Wire()
    await _until(loop.create_unix_connection(lambda: wire, path), deadline)
    return Connection(wire, f"unix:{path}")


def _bound(source: str) -> dict[str, Any]:
    """create_connection's arguments to connect from `source`, once a trial bind shows this machine
    has that address: asyncio's own bind error names neither the address as given nor what to do."""
    return {"local_addr": (source, 0), "family": check_source(source)}


def check_source(source: str) -> int:
    """The address family of `source` once a trial bind shows this machine has it; SourceUnusable if not."""
    family = socket.AF_INET6 if ip_version(source) == 6 else socket.AF_INET
    try:
        info = socket.getaddrinfo(source, 0, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
        with socket.socket(family, socket.SOCK_STREAM) as trial:
            trial.bind(info[0][4])
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else (exc.strerror or str(exc))
        raise SourceUnusable(exc.errno or 0, why) from None
    return family


def quiet_closed_transports(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's exception handler: a callback that fails only because the server already closed
    the socket says nothing (the step waiting on it reports the close itself); anything else is reported
    as asyncio would. uvloop's TLS upgrade, when the server hangs up right after its 220 to STARTTLS,
    schedules a handshake on the closed socket and its RuntimeError would reach standard error."""
    if closed_handle(context.get("exception")):
        return
    loop.default_exception_handler(context)


# uvloop says "unable to perform operation on <...>; the handler is closed" with a bare RuntimeError
# (uvloop/handles/handle.pyx, UVHandle._ensure_alive): its words are all that tell it apart. They are read
# here only, and tests/unit/test_transport.py pins them against the installed uvloop.
_UVLOOP_CLOSED = "the handler is closed"


def closed_handle(exc: BaseException | None) -> bool:
    """The error uvloop raises for an operation on a transport it has already closed."""
    return isinstance(exc, RuntimeError) and _UVLOOP_CLOSED in str(exc)
