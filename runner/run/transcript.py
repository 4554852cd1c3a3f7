"""A case's transcript: every byte sent and received, and notes, in order, redacted and bounded."""

from __future__ import annotations

import time
from collections.abc import Callable

from runner.redact import Redactor
from runner.results import INFO, Event

__all__ = ["MAX_EVENT_BYTES", "MAX_TRANSCRIPT_BYTES", "Listener", "Transcript"]

MAX_EVENT_BYTES = 64 * 1024  # one transcript entry; a large body is shown cut, with its size
MAX_TRANSCRIPT_BYTES = 4 * 1024 * 1024
Listener = Callable[[str, str, bytes], None]  # (case name, direction, bytes) for -v


class Transcript:
    """Writes a case's events into `events`, each stamped with the time since `t0`.

    Secrets are redacted before anything else sees the bytes; a listener (-v) gets them whole,
    the transcript at most MAX_EVENT_BYTES an entry and MAX_TRANSCRIPT_BYTES in all.
    """

    def __init__(self, case_name: str, events: list[Event], redactor: Redactor,
                 listener: Listener | None, t0: float) -> None:
        self.case_name, self.events, self.redactor, self.listener, self.t0 = case_name, events, redactor, listener, t0
        self.size = 0

    def record(self, direction: str, data: bytes) -> None:
        data = self.redactor.bytes(data)
        if self.listener is not None:
            self.listener(self.case_name, direction, data)
        if len(data) > MAX_EVENT_BYTES:
            data = data[:MAX_EVENT_BYTES] + f"... [{len(data) - MAX_EVENT_BYTES} more bytes]".encode()
        if self.size > MAX_TRANSCRIPT_BYTES:
            return
        self.size += len(data)
        if self.size > MAX_TRANSCRIPT_BYTES:  # say once where the transcript stops
            data = f"[transcript cut: over {MAX_TRANSCRIPT_BYTES} bytes; the rest is not kept]".encode()
            direction = INFO
        self.events.append(Event(time.monotonic() - self.t0, direction, data))

    def note(self, text: str) -> None:
        self.record(INFO, text.encode("utf-8"))
