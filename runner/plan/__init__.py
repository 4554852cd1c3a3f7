"""Plans: load (safe YAML with positions) -> validate (JSON Schema) -> build (frozen types); each case's
names come from runner.plan.scope."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runner.plan.types import Case, Plan, Step, Target

if TYPE_CHECKING:
    from runner.plan.schema import ValidationCache

__all__ = ["Case", "Plan", "Step", "Target", "read_plan"]


def read_plan(path: str | Path, overrides: dict[str, str] | None = None, cache: ValidationCache | None = None,
              secrets: Sequence[str] = ()) -> Plan:
    """Load, validate and build one plan file; raise PlanError naming file:line:col. No excerpt of
    the file in an error shows a `password:` value, a variable named in `secrets:` or any of `secrets`."""
    from runner.errors import PlanError
    from runner.plan.build import build_plan
    from runner.plan.load import Hidden, load_file
    from runner.plan.schema import validate

    loaded = load_file(path, hide=Hidden(values=tuple(secrets)))
    problems = validate(loaded, cache=cache)
    if problems:
        raise PlanError(problems)
    return build_plan(loaded, overrides)
