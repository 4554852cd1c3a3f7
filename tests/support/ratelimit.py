"""A rate-limiting front for an SMTP server, as busy MX hosts are: at most `allowed` connections per `window`
seconds; the others get `421 4.7.0 Too many connections, try again later` (RFC 5321 §3.8) and are closed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

BUSY = b"421 4.7.0 Too many connections, try again later\r\n"


class RateLimiter:
    def __init__(self, backend: tuple[str, int], allowed: int, window: float) -> None:
        self.backend, self.allowed, self.window = backend, allowed, window
        self.accepted: list[float] = []
        self.refused = 0
        self.port = 0

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        now = time.monotonic()
        self.accepted = [t for t in self.accepted if now - t < self.window]
        if len(self.accepted) >= self.allowed:
            self.refused += 1
            writer.write(BUSY)
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
            return
        self.accepted.append(now)
        try:
            back_reader, back_writer = await asyncio.open_connection(*self.backend)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, back_writer), self._pipe(back_reader, writer))


@contextlib.contextmanager
def rate_limited(backend: tuple[str, int], allowed: int, window: float) -> Iterator[RateLimiter]:
    """A RateLimiter listening on 127.0.0.1 (its .port) in a thread of its own, until the block ends."""
    limiter = RateLimiter(backend, allowed, window)
    loop = asyncio.new_event_loop()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    limiter.port = sock.getsockname()[1]
    server = loop.run_until_complete(asyncio.start_server(limiter._client, sock=sock))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield limiter
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
