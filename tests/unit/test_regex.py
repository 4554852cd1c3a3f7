"""Regex search bounded in time, and polite to other users of the process's alarm timer."""

from __future__ import annotations

import signal
import time

import pytest

from runner.limits import RegexTimeout, search


def test_ordinary_search_matches():
    assert search(r"queued as (\S+)", "2.0.0 Ok: queued as ABC123")[1] == "ABC123"


def test_catastrophic_backtracking_is_cut_short():
    """(a+)+$ over 40 a's and a b takes about 2**40 steps: only the bound ends it."""
    started, started_cpu = time.monotonic(), time.process_time()
    with pytest.raises(RegexTimeout, match=r"^regex /\(a\+\)\+\$/ ran longer than 0\.2s on this reply"):
        search(r"(a+)+$", "a" * 40 + "b", seconds=0.2)
    assert time.monotonic() - started >= 0.19  # the bound is wall-clock time: it never fires early
    # CPU time, not wall-clock, for the upper bound: on a busy machine waiting for the CPU adds time, not work.
    assert time.process_time() - started_cpu < 1


def test_an_outer_alarm_keeps_its_remaining_time_and_its_handler():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(True))
    try:
        for outer in (0.5, 30.0):  # shorter than the search's own 1 s bound (left alone), then longer (lent back)
            started = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, outer)
            search(r"x", "x")
            remaining, _ = signal.getitimer(signal.ITIMER_REAL)
            elapsed = time.monotonic() - started
            assert outer - elapsed - 0.01 <= remaining <= outer, (outer, elapsed, remaining)
        signal.setitimer(signal.ITIMER_REAL, 0)
        fired.clear()
        signal.setitimer(signal.ITIMER_REAL, 0.01)  # the outer handler is back in place: it, not search's, runs
        deadline = time.monotonic() + 10
        while not fired and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fired == [True]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
