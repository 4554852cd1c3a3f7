"""Regex search bounded in time, and polite to other users of the process's alarm timer."""

from __future__ import annotations

import signal
import time

import pytest

from runner.limits import RegexTimeout, search


def test_ordinary_search_matches():
    assert search(r"queued as (\S+)", "2.0.0 Ok: queued as ABC123")[1] == "ABC123"


def test_catastrophic_backtracking_is_cut_short():
    t0 = time.monotonic()
    with pytest.raises(RegexTimeout, match=r"ran longer than 0\.2s"):
        search(r"(a+)+$", "a" * 40 + "b", seconds=0.2)
    assert time.monotonic() - t0 < 1


def test_an_outer_alarm_keeps_its_remaining_time():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        search(r"x", "x")
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0.3 < remaining <= 0.5
        time.sleep(0.7)
        assert fired == [True]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
