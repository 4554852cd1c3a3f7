"""Plans: load (safe YAML with positions) -> validate (JSON Schema) -> build (frozen types); each case's
names come from runner.plan.scope."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runner.plan.types import Case, Plan, Step, Target

if TYPE_CHECKING:
    from runner.plan.schema import ValidationCache

__all__ = ["Case", "Plan", "Step", "Target", "plan_files", "read_plan", "read_plans"]


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


def read_plans(paths: Sequence[str], overrides: dict[str, str], cache: ValidationCache | None = None,
               given: Mapping[str, Sequence[str]] | None = None, secrets: Sequence[str] = ()) -> list[Plan]:
    """Every plan named (a folder: the plans in it, plan_files), validated, `overrides` over their variables.

    PlanError lists the problems of every plan at once. `given` names the command-line option of each
    override ({"--var": ["rcpt"]}): a name no plan declares or reads is a UsageError, since the run would
    otherwise "pass" on the plan's own value. No error shows any of `secrets` (see read_plan).
    """
    from runner.errors import PlanError

    plans, problems = [], []
    for path in plan_files(paths):
        try:
            plans.append(read_plan(path, overrides, cache, secrets))
        except PlanError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PlanError(problems)
    _check_unread(plans, given or {"--var": list(overrides)})
    return plans


def plan_files(paths: Sequence[str]) -> list[str]:
    """The plan files named: a file as given, a folder as the plans directly inside it (load.plans_in);
    a file named twice (itself and by its folder) once."""
    from runner.errors import UsageError
    from runner.plan.load import plans_in

    files: dict[str, str] = {}
    for path in paths:
        found = [str(p) for p in plans_in(path)] if os.path.isdir(path) else [path]
        if not found:
            raise UsageError(f"{path}: no plans (*.yaml files) in this folder")
        for file in found:
            files.setdefault(os.path.realpath(file), file)
    return list(files.values())


def _check_unread(plans: list[Plan], given: Mapping[str, Sequence[str]]) -> None:
    from runner.errors import UsageError
    from runner.plan.schema import did_you_mean

    known = set().union(*(p.names for p in plans))
    where = plans[0].file if len(plans) == 1 else f"any of the {len(plans)} plans"
    lines = [f"smtprun: {flag} {name}: no variable '{name}' in {where}"
             + (f"; {close}" if (close := did_you_mean(name, known)) else "")
             for flag, names in given.items() for name in dict.fromkeys(names) if name not in known]
    if lines:
        raise UsageError("\n".join(lines))
