"""Many small SMTP servers on loopback ports, one thread: a fleet for `--targets`.

Each answering port greets, says 250 to every line and 221 to QUIT; a silent port accepts and never says
a word. `FleetServer(answering=30, silent=2)` is a context manager; `.targets` lists `127.0.0.1:PORT`,
answering ports first.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

__all__ = ["FleetServer"]


class _Answer(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.buf = transport, b""
        transport.write(b"220 fleet.test ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n" in self.buf:
            line, self.buf = self.buf.split(b"\r\n", 1)
            if line.upper().startswith(b"QUIT"):
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            self.transport.write(b"250 fleet.test\r\n")


class _Silent(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # kept open, never a byte


class FleetServer:
    def __init__(self, answering: int, silent: int = 0) -> None:
        self.counts = (answering, silent)
        self.targets: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _listen(self) -> None:
        for count, protocol in zip(self.counts, (_Answer, _Silent), strict=True):
            for _ in range(count):
                server = await self._loop.create_server(protocol, "127.0.0.1", 0)
                self.targets.append(f"127.0.0.1:{server.sockets[0].getsockname()[1]}")

    def __enter__(self) -> FleetServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(30)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
