"""Large rendered step bodies, bounded per run rather than per template.

One template may render to MAX_BODY characters, which is fine once; a matrix of 16 cases running at
once would hold 16 of them. So a body that renders past MAX_VALUE (nearly none do) must first take a
share of the run's budget, waiting while other cases hold theirs, and keeps it until its step ends.
However many cases run at once, at most RUN_BODIES characters of large bodies are alive.
"""

from __future__ import annotations

import asyncio
import time

from runner.errors import StepFailed
from runner.template import MAX_BODY

__all__ = ["RUN_BODIES", "RenderBudget"]

RUN_BODIES = 2 * MAX_BODY  # characters of large bodies alive at once across a run: two at their largest


class RenderBudget:
    """Characters of large step bodies held at once, by every case of one run (one event loop)."""

    def __init__(self, limit: int = RUN_BODIES) -> None:
        self.limit = limit
        self.held = 0
        self._freed: asyncio.Event | None = None

    async def take(self, size: int, deadline: float) -> None:
        """Hold `size` characters; wait (until the step's deadline) while others hold too many."""
        while self.held and self.held + size > self.limit:  # alone, a body always gets its share
            freed = self._freed = self._freed or asyncio.Event()
            try:
                await asyncio.wait_for(freed.wait(), max(deadline - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                raise StepFailed(f"timed out waiting to render a large body: other cases held "
                                 f"{self.held} characters of the run's {self.limit}") from None
        self.held += size

    def give_back(self, size: int) -> None:
        """Let go of `size` characters held; cases waiting for a share look again."""
        self.held -= size
        if self._freed is not None:
            self._freed.set()
            self._freed = None
