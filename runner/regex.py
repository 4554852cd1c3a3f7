"""Regex search with a time bound: a plan's pattern runs over text the server chose.

A pattern such as `(a+)+$` backtracks exponentially on the right input. CPython's regex engine
checks for signals while it works, so on the main thread a one-shot timer (SIGALRM) stops a
search that runs too long. Elsewhere (a pytest worker thread, a platform without setitimer)
the search runs unbounded, on a reply that is itself bounded (runner.protocol limits).
"""

from __future__ import annotations

import re
import signal
import threading
import time
from functools import lru_cache

__all__ = ["MATCH_SECONDS", "RegexTimeout", "search"]

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


def search(pattern: str, text: str, seconds: float = MATCH_SECONDS) -> re.Match[str] | None:
    """re.search, bounded in time where the platform allows. re.error passes up."""
    compiled = _compiled(pattern)
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return compiled.search(text)
    previous = signal.signal(signal.SIGALRM, _expire)
    started = time.monotonic()
    outer, interval = signal.setitimer(signal.ITIMER_REAL, seconds)  # someone else's alarm, if any
    try:
        return compiled.search(text)
    except _Expired:
        raise RegexTimeout(f"regex /{pattern}/ ran longer than {seconds:g}s on this reply "
                           "(catastrophic backtracking?)") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:  # give the other alarm back what it had left
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 0.001), interval)
