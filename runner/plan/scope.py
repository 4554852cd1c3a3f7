"""The names a template sees, in one place, each knowing whether its value is secret.

A scope holds plan variables (with `--var` and `--secret` over them), a case's matrix values,
what a sequential plan's earlier cases learned, captures, `env`, `ehlo` and `message_id`. There is one scope
per plan (`Scope.for_plan`) and, derived from it, one per run of a case (`Scope.for_case`); each
case's scope has its own Redactor, so concurrent cases never share a mutable one.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from runner.errors import RenderError
from runner.plan.actions import named
from runner.plan.types import Case, Plan
from runner.redact import Redactor
from runner.template import ENVIRON, MAX_VALUE, MAX_VALUES, evaluate, is_template, render

__all__ = ["Scope", "new_message_id", "render_early", "template_names"]

_PASSWORDS = named("password")  # step types whose `password:` is a secret from the start
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")  # dot-atom-text, RFC 5322 §3.2.3


def new_message_id(domain: str | None) -> str:
    """A case's own Message-ID without its angle brackets (RFC 5322 §3.6.4):
    `smtprun.<hex time>.<96 random bits>@<domain>`, so ids never meet across runs, hosts and
    concurrent cases. A domain that is not a plain host name gives "smtprun.invalid"."""
    domain = (domain or "").strip().strip("[]").rstrip(".")
    if not _DOMAIN.match(domain):
        domain = "smtprun.invalid"
    return f"smtprun.{int(time.time()):x}.{secrets.token_hex(12)}@{domain}"


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
                value = step.value
                password = value.get("password") if isinstance(value, dict) else getattr(value, "password", None)
                if step.action in _PASSWORDS and password \
                        and not is_template(password):
                    redactor.add(password)
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
        if "message_id" not in values:  # a plan may fix it; else each run of each case has its own
            helo = values.get("helo")
            values["message_id"] = new_message_id(str(helo) if helo else _literal(plan.target.host))
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


def _literal(text: str | None) -> str | None:
    """A host name as written, None when it is a template (rendered only once the case connects)."""
    return None if text is None or "{" in text else text
