"""Waiting for a message: a reader looked through until it shows the message or `within:` runs out.

The whole wait runs in a daemon thread of its own (imapclient, poplib and mailbox block), never in
a pool that twenty concurrent cases would queue on. The event loop watches the deadline: when it
passes, the budget shuts the reader's sockets, so the step ends within `within:` plus a moment
whatever the server does (silent, dripping, an endless literal).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.mail.reader import Budget, Found, MailError, MailTimeout, Options, Reader, Wanted
from runner.mail.url import MailboxUrl

__all__ = ["Outcome", "open_reader", "wait_for"]

FIRST_DELAY, MAX_DELAY = 0.2, 2.0  # the back-off between looks, seconds
GRACE = 0.4  # after the deadline, how long the thread has to notice its sockets were shut


@dataclass
class Outcome:
    found: Found | None
    waited: float  # seconds from the start of the wait to the look that found it (or to the end)
    looks: int
    deleted: bool = False
    error: str | None = None  # why the mailbox could not be read (the wait did not run out by itself)


def open_reader(url: MailboxUrl, options: Options, budget: Budget, log: Callable[[str], None],
                listeners: Any = None) -> Reader:
    if url.kind in ("imap", "imaps"):
        from runner.mail.imap import ImapReader

        return ImapReader(url, options, budget, log)
    if url.kind in ("pop3", "pop3s"):
        from runner.mail.pop3 import Pop3Reader

        return Pop3Reader(url, options, budget, log)
    if url.kind == "maildir":
        from runner.mail.maildir import MaildirReader

        return MaildirReader(url, options, budget, log)
    from runner.mail.listen import ListenReader

    return ListenReader(url, options, budget, log, listeners)


def _look(reader: Reader, wanted: Wanted, delete: bool) -> Outcome:
    """In the thread: open, look, wait with back-off, look again; the outcome, never an exception."""
    budget, t0 = reader.budget, time.monotonic()
    delay = FIRST_DELAY
    try:
        reader.open()
        while True:
            found = reader.find(wanted)
            if found is not None:
                outcome = Outcome(found, time.monotonic() - t0, reader.looks)
                if delete:
                    reader.delete(found)
                    outcome.deleted = True
                return outcome
            if budget.remaining() <= 0:
                return Outcome(None, time.monotonic() - t0, reader.looks)
            reader.wait(min(delay, budget.remaining()))
            delay = min(delay * 2, MAX_DELAY)
    except MailTimeout:
        return Outcome(None, time.monotonic() - t0, reader.looks, error=_stalled(reader) if not reader.looks else None)
    except MailError as exc:
        return Outcome(None, time.monotonic() - t0, reader.looks, error=str(exc))
    except Exception as exc:
        if budget.aborted.is_set():
            error = _stalled(reader) if not reader.looks else None
            return Outcome(None, time.monotonic() - t0, reader.looks, error=error)
        return Outcome(None, time.monotonic() - t0, reader.looks,
                       error=f"{reader.url.protocol} reader failed: {type(exc).__name__}: {exc}")
    finally:
        reader.close()


def _stalled(reader: Reader) -> str:
    url = reader.url
    return (f"{url.protocol} server {url.host}:{url.port} did not let smtprun log in and search within "
            f"{reader.budget.seconds:g}s (silent, or too slow)")


async def wait_for(reader: Reader, wanted: Wanted, delete: bool = False) -> Outcome:
    """The outcome of looking for `wanted` until the reader's budget runs out."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Outcome] = loop.create_future()
    budget = reader.budget
    reader.writable = delete
    t0 = time.monotonic()

    def settle(outcome: Outcome) -> None:
        if not done.done():
            done.set_result(outcome)

    def run() -> None:
        outcome = _look(reader, wanted, delete)
        with contextlib.suppress(RuntimeError):  # the loop is gone (Ctrl-C): nobody waits for this any more
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=run, name=f"smtprun-{reader.url.kind}", daemon=True).start()
    try:
        return await asyncio.wait_for(asyncio.shield(done), max(0.0, budget.remaining()) + 0.1)
    except asyncio.TimeoutError:
        budget.abort()
    except asyncio.CancelledError:
        budget.abort()
        raise
    try:
        return await asyncio.wait_for(asyncio.shield(done), GRACE)
    except asyncio.TimeoutError:  # the thread is still stuck: say what it was doing
        return Outcome(None, time.monotonic() - t0, reader.looks, error=_stalled(reader) if not reader.looks else
                       f"{reader.url.protocol} server {reader.url.host}:{reader.url.port} was still sending "
                       f"when the wait of {budget.seconds:g}s ran out")
