"""At most a few sessions to one server at a time, whatever `--jobs` allows for the whole run.

Mail servers limit the connections one client may hold: Courier closes a sixth one from the same address
without a word (MAXPERIP=5, Debian's default), Exim has `smtp_accept_max_per_host`, Postfix
`smtpd_client_connection_count_limit` (anvil). A plan of nine cases must not trip those limits by itself,
so a run opens at most DEFAULT_PER_HOST sessions to one server (address and port) at once (sslyze's
scanner uses 5 per server; one fewer leaves room for the admin's own session); `--per-host` changes it,
and load mode (`--repeat`) uses `--jobs`, as a load test means to.

The limit wraps the connector: a session's slot is taken before it connects (the wait does not count
against the connect timeout) and given back once its socket is closed.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

from runner.net.transport import Connector, Transport

__all__ = ["DEFAULT_PER_HOST", "HostSlots"]

DEFAULT_PER_HOST = 4


class HostSlots:
    """A Connector that holds at most `limit` connections to each address and port at once."""

    def __init__(self, connect: Connector, limit: int) -> None:
        self._connect = connect
        self.limit = max(1, limit)
        self._slots: dict[str, asyncio.Semaphore] = {}
        self.open: dict[str, int] = {}  # connections open now, by address and port

    async def __call__(self, host: str, port: int, deadline: float, tls: ssl.SSLContext | None = None,
                       server_name: str | None = None, **bind: Any) -> Transport:
        key = f"{host.lower()}:{port}"
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = asyncio.Semaphore(self.limit)
        t0 = time.monotonic()
        await slot.acquire()
        deadline += time.monotonic() - t0  # waiting for a slot is not the server's slowness
        try:
            conn = await self._connect(host, port, deadline, tls, server_name, **bind)
        except BaseException:
            slot.release()
            raise
        conn.siblings = self.open.get(key, 0)
        self.open[key] = conn.siblings + 1
        conn.on_closed.append(lambda: self._release(key, slot))
        return conn

    def _release(self, key: str, slot: asyncio.Semaphore) -> None:
        self.open[key] -= 1
        if not self.open[key]:
            del self.open[key]
        slot.release()
