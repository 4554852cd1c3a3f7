"""The event loop a run uses: uvloop where it is installed, else asyncio's own, with the handler that keeps a
callback failing on an already closed socket quiet."""

from __future__ import annotations

import asyncio
import os

from runner.net.transport import quiet_closed_transports

__all__ = ["event_loop_name", "new_event_loop"]


def event_loop_name() -> str:
    """uvloop where it is installed (a dependency wherever it builds): the same asyncio API, faster I/O.
    SMTPRUN_EVENT_LOOP=asyncio chooses the stock loop, the fallback every test also runs on."""
    if os.environ.get("SMTPRUN_EVENT_LOOP", "").strip().lower() == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def new_event_loop() -> asyncio.AbstractEventLoop:
    if event_loop_name() == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    loop.set_exception_handler(quiet_closed_transports)
    return loop
