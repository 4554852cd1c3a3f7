"""A c-ares channel (pycares) driven by the running asyncio loop: its sockets watched with add_reader/add_writer,
its retry timers with call_at. No thread: c-ares reads, parses and calls back on the loop's own thread, inside
the reader callback, so a burst of answers costs one wake-up. (pycares' default, an event thread per channel,
held the channel's lock while it delivered answers, and every query submitted meanwhile stalled the loop for
about 0.1 ms.) Needs a loop with add_reader: uvloop, or asyncio's selector loop; not Windows' proactor loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["TIMED_OUT", "Channel"]

TIMED_OUT = -1  # the caller's deadline passed before c-ares answered


class Channel:
    """One c-ares channel on `loop`. Raises pycares.AresError when c-ares cannot start (no name server)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, servers: Sequence[str], timeout: float, tries: int) -> None:
        import pycares

        self.loop = loop
        self._readers: set[int] = set()
        self._writers: set[int] = set()
        self._timer: asyncio.Handle | None = None
        self._due = 0.0  # when the timer fires
        self._pending = 0  # queries c-ares has not called back for, including those their caller gave up on
        self._arming = False  # an _arm is due at the end of this turn of the loop
        self._closed = False
        me = weakref.ref(self)  # c-ares keeps the callback; it must not keep this channel alive

        def state(fd: int, readable: bool, writable: bool) -> None:  # c-ares opened, changed or closed a socket
            channel = me()
            if channel is not None:
                channel._watch(fd, readable, writable)

        flags = pycares.ARES_FLAG_NOSEARCH | pycares.ARES_FLAG_EDNS  # the name as given; EDNS0 (RFC 6891)
        if not servers:
            flags |= pycares.ARES_FLAG_NO_DFLT_SVR  # no resolv.conf: fail, never ask 127.0.0.1 by default
        self.cares = pycares.Channel(flags=flags, timeout=timeout, tries=tries, sock_state_cb=state)
        if servers:
            self.cares.servers = list(servers)
        self.servers: list[str] = list(self.cares.servers)

    def _watch(self, fd: int, readable: bool, writable: bool) -> None:
        import pycares

        if self._closed:
            return
        if readable and fd not in self._readers:
            self.loop.add_reader(fd, self._process, fd, pycares.ARES_SOCKET_BAD)
            self._readers.add(fd)
        elif not readable and fd in self._readers:
            self.loop.remove_reader(fd)
            self._readers.discard(fd)
        if writable and fd not in self._writers:  # a TCP connection under way, or a write that has to wait
            self.loop.add_writer(fd, self._process, pycares.ARES_SOCKET_BAD, fd)
            self._writers.add(fd)
        elif not writable and fd in self._writers:
            self.loop.remove_writer(fd)
            self._writers.discard(fd)

    def _process(self, read_fd: int, write_fd: int) -> None:
        if not self._closed:
            self.cares.process_fd(read_fd, write_fd)

    def _arm(self) -> None:
        """Wake c-ares when its next timeout (a retry, the next server) is due, if that is sooner than planned."""
        if self._closed or not self._pending:
            return
        due = self.loop.time() + max(self.cares.timeout(), 0.001)
        if self._timer is None or due < self._due - 0.001:
            if self._timer is not None:
                self._timer.cancel()
            self._due = due  # kept here: uvloop hands back a plain Handle, without when(), for a time already past
            self._timer = self.loop.call_at(due, self._tick)

    def _arm_soon(self) -> None:
        """_arm once this turn of the loop is over: a burst of queries (each answer lets the next one go) costs one
        look at c-ares' timeouts, not one each (about 10 µs a look, through pycares)."""
        if not self._arming:
            self._arming = True
            self.loop.call_soon(self._armed)

    def _armed(self) -> None:
        self._arming = False
        self._arm()

    def _tick(self) -> None:
        import pycares

        self._timer = None
        if not self._closed:
            self.cares.process_fd(pycares.ARES_SOCKET_BAD, pycares.ARES_SOCKET_BAD)
            self._arm()

    def send(self, name: str, qtype: int, deadline: float, done: Callable[[int | None, Any], None]) -> None:
        """Ask; done(None, the pycares result) or done(the c-ares status, None) follows once, on the loop's
        thread: done(TIMED_OUT, None) at `deadline` if c-ares has not answered by then."""
        import pycares

        settled = False

        def finish(status: int | None, result: Any) -> None:
            nonlocal settled
            if not settled:
                settled = True
                timer.cancel()
                done(status, result)

        def callback(result: Any, status: int | None) -> None:  # inside process_fd or cancel
            self._pending -= 1
            finish(status, result)

        timer = self.loop.call_at(deadline, finish, TIMED_OUT, None)
        self._pending += 1
        try:
            self.cares.query(name, qtype, callback=callback)
        except pycares.AresError as e:  # refused before sending, e.g. a label over 63 octets
            self._pending -= 1
            finish(e.args[0] if e.args else pycares.errno.ARES_EBADNAME, None)
        self._arm_soon()

    def close(self) -> None:
        """Cancel what is still asked (its callers get ECANCELLED), stop watching, let c-ares go."""
        if self._closed:
            return
        self.cares.cancel()
        self._closed = True
        for fd in self._readers:
            self.loop.remove_reader(fd)
        for fd in self._writers:
            self.loop.remove_writer(fd)
        self._readers.clear()
        self._writers.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.cares.close()  # destroyed on pycares' shutdown thread; _watch ignores what it reports from there
