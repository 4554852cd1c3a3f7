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

FIRST_DELAY, MAX_DELAY = 0.2, 2.0  # the back-off between looks (and between tries to reach a mailbox), seconds
# A message filed elsewhere (Junk) is looked for in the other folders a second into the wait (most
# deliveries are in by then), and then every few seconds: a misfiled message fails in seconds, not
# after all of `within:`, and a mailbox of many folders is not walked on every look.
FIRST_SWEEP, SWEEP_EVERY = 1.0, 3.0
IMPLICIT_TLS_PORTS = (993, 995)  # IMAPS, POP3S (RFC 8314 §7.3)
GRACE = 0.4  # after the deadline, how long the thread has to notice its sockets were shut


@dataclass
class Outcome:
    found: Found | None
    waited: float  # seconds from the start of the wait to the look that found it (or to the end)
    looks: int
    deleted: bool = False
    error: str | None = None  # why the mailbox could not be read (the wait did not run out by itself)
    elsewhere: Found | None = None  # not in the folder the step names, but in this other one
    tries: int = 0  # transient failures to reach or read the mailbox (each followed by another try)


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
    if url.kind == "mbox":
        from runner.mail.mbox import MboxReader

        return MboxReader(url, options, budget, log)
    from runner.mail.listen import ListenReader

    return ListenReader(url, options, budget, log, listeners)


class _Tries:
    """The tries to open a mailbox in one wait, and the transient failures among them (a server down,
    restarting, busy, a connection lost): how many, and the last one's words."""

    def __init__(self) -> None:
        self.attempts, self.failures, self.last, self.down = 0, 0, "", False
        self.t0 = time.monotonic()

    def again(self, reader: Reader, exc: MailError, delay: float) -> bool:
        """After a transient failure: close the reader and let `delay` pass; False when the wait ran out."""
        self.failures, self.last, self.down = self.failures + 1, str(exc), True
        reader.close()
        budget = reader.budget
        reader.log(f"{exc}; trying again in {max(0.0, min(delay, budget.remaining())):.1f}s")
        budget.sleep(delay)
        return budget.remaining() > 0

    def gave_up(self, exc: MailError) -> str:
        """Why the wait ended: a transient failure it kept meeting (until the wait ran out, perhaps in
        one more try that hung), or a lasting one met after some."""
        n = self.failures
        if not n:
            return str(exc)
        if exc.transient or isinstance(exc, MailTimeout):
            many = "s" if self.attempts != 1 else ""
            return f"{self.last}; tried {self.attempts} time{many} in {time.monotonic() - self.t0:.1f}s"
        return f"{exc} (after {n} failed attempt{'s' if n != 1 else ''}: {self.last})"


class _Look:
    """One wait, in its thread: open, look, wait with back-off, look again; the outcome, never an exception.
    A transient failure (the server down or restarting, the connection lost) closes the reader and
    opens it again after the same back-off, until the wait runs out."""

    def __init__(self, reader: Reader, wanted: Wanted, delete: bool) -> None:
        self.reader, self.wanted, self.delete = reader, wanted, delete
        self.t0, self.tries = time.monotonic(), _Tries()
        self.delay, self.opened = FIRST_DELAY, False
        self.sweep_at = self.t0 + FIRST_SWEEP

    def outcome(self, **kw: Any) -> Outcome:
        return Outcome(kw.pop("found", None), time.monotonic() - self.t0, self.reader.looks,
                       tries=self.tries.failures, **kw)

    def run(self) -> Outcome:
        try:
            return self._until_settled()
        except MailTimeout as exc:
            return self.outcome(error=self._cut_short(exc))
        except MailError as exc:
            return self.outcome(error=self.tries.gave_up(exc))
        except Exception as exc:
            if self.reader.budget.aborted.is_set():  # the deadline shut the reader's sockets under it
                return self.outcome(error=self._cut_short(MailTimeout("the wait ran out")))
            return self.outcome(error=f"{self.reader.url.protocol} reader failed: {type(exc).__name__}: {exc}")
        finally:
            self.reader.close()

    def _until_settled(self) -> Outcome:
        while True:
            try:
                outcome = self._once()
            except MailError as exc:
                if not exc.transient or isinstance(exc, MailTimeout):
                    raise
                outcome = self._retry(exc)
            if outcome is not None:
                return outcome
            self.delay = min(self.delay * 2, MAX_DELAY)

    def _retry(self, exc: MailError) -> Outcome | None:
        """After a transient failure: None to open the mailbox again, or the outcome when the wait ran out."""
        self.opened = False
        if self.tries.again(self.reader, exc, self.delay):
            return None
        return self.outcome(error=self.tries.gave_up(exc))

    def _once(self) -> Outcome | None:
        """One look (opening the mailbox first if need be), then a pause: the outcome once there is one."""
        reader = self.reader
        if not self.opened:
            self.tries.attempts += 1
            reader.open()
            self.opened, self.tries.down = True, False
        found = reader.find(self.wanted)
        if found is not None:
            return _settled(reader, self.outcome(found=found), self.delete)
        elsewhere = self._sweep()
        if elsewhere is not None:
            return _settled(reader, self.outcome(elsewhere=elsewhere), self.delete)
        if reader.budget.remaining() <= 0:
            return self.outcome()
        reader.wait(min(self.delay, reader.budget.remaining()))
        return None

    def _sweep(self) -> Found | None:
        """The message in another folder, when it is time to look there (see FIRST_SWEEP)."""
        if time.monotonic() < self.sweep_at:
            return None
        elsewhere = self.reader.find_elsewhere(self.wanted)
        self.sweep_at = time.monotonic() + SWEEP_EVERY
        return elsewhere

    def _cut_short(self, exc: MailTimeout) -> str | None:
        """Why a wait the deadline ended failed: the server kept failing, or never let smtprun look;
        None when the mailbox was looked through and the message was not there."""
        if self.tries.down:
            return self.tries.gave_up(exc)
        return _stalled(self.reader) if not self.reader.looks else None


def _settled(reader: Reader, outcome: Outcome, delete: bool) -> Outcome:
    """What was found (in the folder named, or elsewhere), removed first when the step says so."""
    found = outcome.found or outcome.elsewhere
    if delete and found is not None:
        reader.delete(found)
        outcome.deleted = True
    return outcome


def _stalled(reader: Reader) -> str:
    url = reader.url
    host = f"[{url.host}]" if ":" in url.host else url.host
    hint = ""
    if not url.implicit_tls and url.port in IMPLICIT_TLS_PORTS:  # it waits for a TLS handshake, we for a greeting
        hint = f"; port {url.port} is usually implicit TLS: {url.kind}s://"
    return (f"{url.protocol} server {host}:{url.port} did not let smtprun log in and search within "
            f"{reader.budget.seconds:g}s (silent, or too slow{hint})")


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
        outcome = _Look(reader, wanted, delete).run()
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
