"""The names a template sees, in one place, each knowing whether its value is secret.

A scope holds plan variables (with `--var` and `--secret` over them), a case's matrix values,
what a sequential plan's earlier cases learned, captures, `env` and `ehlo`. There is one scope
per plan (`Scope.for_plan`) and, derived from it, one per run of a case (`Scope.for_case`); each
case's scope has its own Redactor, so concurrent cases never share a mutable one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from runner.errors import RenderError
from runner.plan.types import Case, Plan
from runner.redact import Redactor
from runner.template import ENVIRON, MAX_VALUE, MAX_VALUES, evaluate, is_template, render

__all__ = ["Scope", "render_early", "template_names"]


def template_names(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` and the built-in names: `ehlo` (empty until an EHLO reply, unless a value says
    otherwise) and `env` (always the environment, read by name only)."""
    names = {"ehlo": {}, **values}
    names["env"] = ENVIRON  # always the environment, whatever a plan variable says
    return names


def render_early(text: str, values: Mapping[str, Any], limit: int = MAX_VALUE) -> str:
    """A plan string rendered before any session (a variable, a matrix case's name): no EHLO keywords yet."""
    return render(text, {**template_names(values), "ehlo": {}}, limit)


class Scope:
    """One set of template names and the secrets among them, with the Redactor that hides them."""

    def __init__(self, values: Mapping[str, Any], secret_names: Iterable[str] = (),
                 redactor: Redactor | None = None) -> None:
        self.values: dict[str, Any] = template_names(values)  # captures and `ehlo` are set here as a case runs
        self.secret_names = frozenset(secret_names)
        self.redactor = redactor.copy() if redactor is not None else Redactor()
        for name in sorted(self.secret_names & self.values.keys()):
            self.redactor.add(str(self.values[name]))
        self.learned: dict[str, Any] = {}  # a sequential plan: what its cases so far captured, and the last EHLO
        self.late_error: str | None = None  # a case: a matrix-dependent variable that would not render

    @classmethod
    def for_plan(cls, plan: Plan, secrets: Mapping[str, str] | None = None) -> Scope:
        """The plan's scope: its variables; its secrets, the `--secret` values, and every password
        written into an `auth:` step (a secret before the step runs)."""
        redactor = Redactor()
        for case in plan.cases:
            for step in (*case.steps, *case.finally_steps):
                if step.action == "auth" and not is_template(step.value["password"]):
                    redactor.add(step.value["password"])
        for value in (secrets or {}).values():
            redactor.add(value)
        known = [name for name in plan.secrets if name not in plan.late_vars]  # those are rendered per case
        return cls(plan.vars, known, redactor)

    def for_case(self, plan: Plan, case: Case) -> Scope:
        """A fresh scope for one run of `case`: its matrix values over what earlier cases learned, over
        the plan's variables; the variables that name a matrix value rendered (see `late_error`)."""
        values = {**plan.vars, **self.learned, **case.vars}
        late_error, room = None, MAX_VALUES  # a case's variables together, as a plan's are (runner/plan/build.py)
        try:
            for name in plan.late_vars:
                values[name] = render_early(str(plan.vars[name]), values, min(room, MAX_VALUE))
                room -= len(values[name])
        except RenderError as exc:
            late_error = f"vars: {exc}"
        scope = Scope(values, plan.secrets, self.redactor)
        scope.late_error = late_error
        return scope

    def learn(self, case: Scope, captures: Mapping[str, str]) -> None:
        """After a case of a sequential plan: its captures, last EHLO keywords and secrets, for the next."""
        self.learned.update(captures, ehlo=case.values["ehlo"])
        self.redactor = case.redactor.copy()

    def set(self, name: str, value: Any) -> None:
        """A name a running case learned: a capture, or `ehlo` after an EHLO reply (or STARTTLS)."""
        self.values[name] = value

    def secret(self, value: str | bytes, encoded: bool = True) -> None:
        """A value that became secret as the case ran (an AUTH credential), in every form it is sent."""
        self.redactor.add(value, encoded)

    def render(self, text: str) -> str:
        return render(text, self.values)

    def evaluate(self, expression: str) -> Any:
        return evaluate(expression, self.values)
