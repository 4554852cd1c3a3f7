"""The event loop a run uses: uvloop where it is installed and the run is large enough to gain from it, else
asyncio's own, with the handler that keeps a callback failing on an already closed socket quiet."""

from __future__ import annotations

import asyncio
import importlib.util
import os

from runner.net.transport import quiet_closed_transports

__all__ = ["UVLOOP_FROM", "event_loop_name", "new_event_loop"]

# Sessions from which uvloop pays for itself. Importing it costs about 20 ms (python -X importtime, 2-core test
# machine); it saves about 0.2 ms a session (bench/run.py measurement 2″: some 2,000 sessions/s against 1,500 on
# the stock loop). A run of a few cases, the common one, starts sooner without it.
UVLOOP_FROM = 100


def event_loop_name(sessions: int | None = None) -> str:
    """uvloop for a run of about `sessions` sessions or more (None: a long-lived or large run, as the exporter's and
    the load workers' are), where it is installed (a dependency wherever it builds): the same asyncio API, faster
    I/O. SMTPRUN_EVENT_LOOP=asyncio or =uvloop chooses one whatever the size."""
    chosen = os.environ.get("SMTPRUN_EVENT_LOOP", "").strip().lower()
    if chosen == "asyncio" or importlib.util.find_spec("uvloop") is None:
        return "asyncio"
    if chosen == "uvloop" or sessions is None or sessions >= UVLOOP_FROM:
        return "uvloop"
    return "asyncio"


def new_event_loop(sessions: int | None = None) -> asyncio.AbstractEventLoop:
    if event_loop_name(sessions) == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    loop.set_exception_handler(quiet_closed_transports)
    return loop
