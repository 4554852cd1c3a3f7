"""Timing checks that hold on a busy machine.

Wall-clock bounds fail when other processes take the CPU; CPU time spent by this process does not
grow with the load around it. Where a test is about how cost grows (linear, not quadratic; bounded,
not exponential), it compares two sizes measured the same way instead of trusting one absolute figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def cpu_seconds(fn: Callable[[], T]) -> tuple[T, float]:
    """fn()'s result and the CPU time this process spent on it (every thread counts)."""
    start = time.process_time()
    result = fn()
    return result, time.process_time() - start
