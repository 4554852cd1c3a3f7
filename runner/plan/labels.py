"""What a step is, in words and in wire text, worked out once as the plan is built (runner.plan.stepbuilder), not
again for every session that runs it."""

from __future__ import annotations

from typing import Any

from runner.plan.actions import EXPECT, KINDS
from runner.template import is_template

__all__ = ["shown", "wire_template"]


def shown(action: str, value: Any, name: str | None) -> str:
    """What a step does, in a few words, before it has run (running it may render a better one)."""
    kind = KINDS.get(action)
    if kind is not None and kind.large == ("",) and not kind.ends_data and isinstance(value, str):
        return value  # a command line or raw bytes, as written
    if action == "smuggle":
        from runner.smtp.smuggling import ending_name

        return name or f"smuggle {ending_name(value.ending)}"
    return name or ("read a reply" if action == EXPECT else action)


def wire_template(action: str, value: Any) -> str | None:
    """The step's text that goes on the wire (ActionKind.large), when it is a template: rendered as the step starts
    (runner.run.steprender), where a large one holds a share of the run's budget."""
    kind = KINDS.get(action)
    if kind is None or not kind.large:
        return None
    text = getattr(value, kind.large[0], None) if kind.large[0] else value  # bdat's `data`
    return text if isinstance(text, str) and is_template(text) else None
