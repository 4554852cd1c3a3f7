"""Bounds on work a plan can make unbounded: regex searches over server text, template rendering.

A pattern such as `(a+)+$` backtracks exponentially on the right input, and a template can loop
for hours within the sandbox's size bounds. CPython checks for signals between bytecodes and
inside its regex engine, so on the main thread a one-shot timer (SIGALRM) stops work that runs
too long. Elsewhere (a pytest worker thread, a platform without setitimer) it runs unbounded.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from functools import lru_cache

__all__ = ["MATCH_SECONDS", "RegexTimeout", "TimeBoundExceeded", "memory_bound", "search", "time_bound"]

MATCH_SECONDS = 1.0


class RegexTimeout(Exception):
    """A search ran past MATCH_SECONDS."""


class _Expired(BaseException):  # BaseException: no `except Exception` in between may swallow it
    pass


def _expire(signum: int, frame: object) -> None:
    raise _Expired


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class TimeBoundExceeded(Exception):
    """Work under `time_bound` ran past its seconds."""


@contextlib.contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    """Raise TimeBoundExceeded in the block after `seconds`, where the platform allows; keeps any outer alarm."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return
    outer, interval = signal.getitimer(signal.ITIMER_REAL)
    if outer and outer <= seconds:  # someone else's alarm comes first: it keeps its say
        yield
        return
    previous = signal.signal(signal.SIGALRM, _expire)
    started = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Expired:
        raise TimeBoundExceeded from None
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        except _Expired:  # it fired between the block's end and here: the work was done in time
            signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:  # give the other alarm back what it had left
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 0.001), interval)


@contextlib.contextmanager
def memory_bound(extra: int) -> Iterator[None]:
    """Let the block grow the process by at most `extra` bytes of address space (MemoryError past it).

    The sandbox bounds each operation, but a template can still build one huge string out of many
    bounded ones; a soft RLIMIT_AS for the moment it renders turns that into a MemoryError. The limit
    is the process's: another thread allocating more than `extra` in those moments would fail too,
    which smtprun's own threads (the embedded server, name lookups) never come near.
    """
    try:
        import resource

        page = os.sysconf("SC_PAGE_SIZE")
        with open("/proc/self/statm") as fh:
            in_use = int(fh.read().split()[0]) * page
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):  # not Linux: no bound
        yield
        return
    limit = in_use + extra
    if (soft != resource.RLIM_INFINITY and soft <= limit) or (hard != resource.RLIM_INFINITY and hard < limit):
        yield  # already bounded tighter by the user
        return
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def search(pattern: str, text: str, seconds: float = MATCH_SECONDS) -> re.Match[str] | None:
    """re.search, bounded in time where the platform allows. re.error passes up."""
    compiled = _compiled(pattern)
    try:
        with time_bound(seconds):
            return compiled.search(text)
    except TimeBoundExceeded:
        raise RegexTimeout(f"regex /{pattern}/ ran longer than {seconds:g}s on this reply "
                           "(catastrophic backtracking?)") from None
