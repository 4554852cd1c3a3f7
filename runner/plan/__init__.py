"""Plans: load (safe YAML with positions) -> validate (JSON Schema) -> build (frozen model)."""

from __future__ import annotations

from pathlib import Path

from runner.errors import PlanError
from runner.plan.load import load_file
from runner.plan.model import Case, Plan, Step, Target, build_plan
from runner.plan.schema import validate

__all__ = ["Case", "Plan", "Step", "Target", "read_plan"]


def read_plan(path: str | Path, overrides: dict[str, str] | None = None) -> Plan:
    """Load, validate and build one plan file; raise PlanError naming file:line:col."""
    loaded = load_file(path)
    problems = validate(loaded)
    if problems:
        raise PlanError(problems)
    return build_plan(loaded, overrides)
