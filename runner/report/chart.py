"""The latency chart of a load-mode case: inline SVG, drawn here, so the page stays script-free.

One group of four horizontal bars (p50, p90, p99, max) per step that waited for a reply, on a
logarithmic axis: the tail of a latency distribution is often a hundred times its median, and
on a linear axis that would flatten the median bars to nothing. Each bar carries its value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

from runner.report.format import format_latency, printable

__all__ = ["PERCENTILES", "latency_chart"]

PERCENTILES = (("p50", "#9ecbff"), ("p90", "#54aeff"), ("p99", "#0969da"), ("max", "#6e7781"))

WIDTH = 960  # viewBox units; the page scales the chart to its column
LABEL_W = 250  # the step's label, left of its bars
KEY_X = 286  # right edge of "p50", "p90", ...
BAR_X = 292
BAR_END = 870  # leaves room for the value written after the longest bar
BAR_H = 9
PITCH = 12  # one bar row
GROUP_PAD = 8
AXIS_H = 20
MAX_LABEL = 30  # characters of a step's label shown; the full label is the group's tooltip


def _scale(steps: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """The axis as decades, (log10 of the lowest tick, log10 of the highest)."""
    values = [s[k] for s in steps for k, _ in PERCENTILES if isinstance(s.get(k), (int, float)) and s[k] > 0]
    if not values:
        return -4.0, -3.0
    lo = math.floor(math.log10(min(values)))
    hi = math.ceil(math.log10(max(values)))
    return float(lo), float(max(hi, lo + 1))


def _x(value: float, lo: float, hi: float) -> float:
    if value <= 0:
        return BAR_X
    frac = (math.log10(value) - lo) / (hi - lo)
    return BAR_X + min(max(frac, 0.0), 1.0) * (BAR_END - BAR_X)


def _tick(decade: int) -> str:
    ms = 10.0 ** (decade + 3)
    return f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:g} ms"


def _count(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else "0"


def _cut(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def latency_chart(steps: Sequence[dict[str, Any]]) -> Markup:
    """The chart for LoadStats.summary()["steps"]; empty when no step waited for a reply."""
    if not steps:
        return Markup("")
    lo, hi = _scale(steps)
    group_h = len(PERCENTILES) * PITCH + GROUP_PAD
    height = AXIS_H + len(steps) * group_h
    out = [
        f'<svg class="latency" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="12" '
        f'aria-label="reply latency per step: p50, p90, p99 and max, logarithmic scale">'
    ]
    for n in range(0, len(steps), 2):  # bands first, so grid lines and bars draw over them
        y = AXIS_H + n * group_h
        out.append(f'<rect x="0" y="{y - 3}" width="{WIDTH}" height="{group_h}" fill="#f6f8fa"/>')
    for decade in range(int(lo), int(hi) + 1):
        x = _x(10.0**decade, lo, hi)
        out.append(f'<line x1="{x:.1f}" y1="{AXIS_H - 4}" x2="{x:.1f}" y2="{height}" stroke="#d1d9e0"/>')
        out.append(f'<text x="{x:.1f}" y="12" text-anchor="middle" fill="#59636e" font-size="11">'
                   f"{_tick(decade)}</text>")
    for n, step in enumerate(steps):
        top = AXIS_H + n * group_h
        label = printable(str(step.get("label", "")))
        out.append(f'<g class="step"><title>step {escape(step.get("index"))}: {escape(label)}</title>')
        out.append(f'<text x="8" y="{top + 11}" font-weight="600" fill="#1f2328">'
                   f'{escape(step.get("index"))} · {escape(_cut(label))}</text>')
        out.append(f'<text x="8" y="{top + 27}" fill="#59636e" font-size="11">'
                   f'{_count(step.get("count"))} replies timed</text>')
        for row, (key, colour) in enumerate(PERCENTILES):
            value = step.get(key)
            y = top + row * PITCH
            end = _x(value, lo, hi) if isinstance(value, (int, float)) else BAR_X
            width = max(end - BAR_X, 2.0)
            out.append(f'<text x="{KEY_X}" y="{y + BAR_H - 1}" text-anchor="end" fill="#59636e" '
                       f'font-size="10">{key}</text>')
            out.append(f'<rect x="{BAR_X}" y="{y}" width="{width:.1f}" height="{BAR_H}" rx="2" fill="{colour}"/>')
            out.append(f'<text class="v" x="{BAR_X + width + 5:.1f}" y="{y + BAR_H - 1}" font-size="10.5" '
                       f'fill="#1f2328">{escape(format_latency(value))}</text>')
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))
