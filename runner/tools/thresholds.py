"""Threshold ranges as the Monitoring Plugins write them, and their performance data.

    range   = ["@"] [start ":"] end     ; alert when the value is outside start..end (inside with "@")
    start   = number | "~"              ; "~" is minus infinity; no start means 0
    end     = number | ""               ; no end (after ":") means plus infinity

`10` alerts outside 0..10, `10:` below 10, `~:10` above 10, `10:20` outside 10..20, `@10:20` inside
10..20 (Monitoring Plugins Development Guidelines, "Threshold and ranges").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Range", "perfdata"]


def _number(text: str, whole: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a threshold range: {whole!r} (expected N, N:, ~:N, N:M or @N:M)") from None
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"not a threshold range: {whole!r} (expected N, N:, ~:N, N:M or @N:M)")
    return value


@dataclass(frozen=True)
class Range:
    start: float
    end: float
    inside: bool  # "@": alert inside the range rather than outside it
    text: str  # as written, for the performance data

    @classmethod
    def parse(cls, text: str) -> Range:
        """`range`, as above; a ValueError saying what is wrong otherwise."""
        body = text.strip()
        inside = body.startswith("@")
        body = body[1:] if inside else body
        if not body or body.count(":") > 1:
            raise ValueError(f"not a threshold range: {text!r} (expected N, N:, ~:N, N:M or @N:M)")
        low, colon, high = body.rpartition(":")
        if not colon:
            low, high = "0", body
        start = -math.inf if low == "~" else _number(low or "0", text)
        end = math.inf if high == "" else _number(high, text)
        if start > end:
            raise ValueError(f"threshold range {text!r} starts above its end")
        return cls(start, end, inside, text.strip())

    def alerts(self, value: float) -> bool:
        within = self.start <= value <= self.end
        return within if self.inside else not within

    def __str__(self) -> str:
        return self.text


def _figure(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def perfdata(label: str, value: float, unit: str = "", warning: Range | None = None,
             critical: Range | None = None, minimum: float | None = None) -> str:
    """One `'label'=value[UOM];[warn];[crit];[min];[max]` field, trailing empty fields left off."""
    fields = [f"{_figure(value)}{unit}", str(warning or ""), str(critical or ""),
              "" if minimum is None else _figure(minimum)]
    while fields and fields[-1] == "":
        fields.pop()
    name = label if label.replace("_", "").isalnum() else "'" + label.replace("'", "''") + "'"
    return f"{name}={';'.join(fields)}"
