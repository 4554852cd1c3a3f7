"""Rendering, as one stage: the names each of a case's steps sees, at the moment it runs.

A step's templates are rendered as it runs, never earlier, so they see the captures of the steps
before it and the EHLO keywords in force. An include's parameters (and the included file's own
`vars:`) are rendered once per case, the first time one of its steps needs them, and forgotten
with the case.
"""

from __future__ import annotations

import contextlib
from collections import ChainMap
from collections.abc import AsyncIterator, Mapping
from typing import Any

from runner.errors import RenderError
from runner.plan.scope import Scope
from runner.plan.types import Case, Include, Step
from runner.results import SKIPPED, CaseResult
from runner.run.budget import RenderBudget
from runner.template import (
    MAX_BODY,
    MAX_VALUE,
    MAX_VALUES,
    OutputTooLarge,
    evaluate,
    preview,
    render,
    truth,
)

__all__ = ["StepRenderer", "preview_labels", "skip_reason"]

class StepRenderer:
    """Renders one case's templates against the case's scope.

    Every string renders to at most MAX_VALUE characters, but the step's body, which may reach
    MAX_BODY under the run's `budget`: rendered by `body()` as the step starts, freed as it ends.
    """

    def __init__(self, scope: Scope, budget: RenderBudget | None = None) -> None:
        self.scope = scope
        self.budget = budget or RenderBudget()
        self._includes: dict[Include, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._ready: tuple[str, str] | None = None  # the running step's body: its template, rendered

    @contextlib.asynccontextmanager
    async def body(self, step: Step, deadline: float) -> AsyncIterator[None]:
        """While the step runs, its body rendered; a large one holds a share of the run's budget."""
        template, share = step.wire_template, 0
        try:
            if template is not None:
                try:
                    self._ready = (template, render(template, self.names(step), MAX_VALUE))
                except OutputTooLarge:
                    await self.budget.take(MAX_BODY, deadline)
                    share = MAX_BODY
                    text = render(template, self.names(step), MAX_BODY)
                    self.budget.give_back(share - len(text))  # keep only what it holds
                    share, self._ready = len(text), (template, text)
            yield
        finally:
            self._ready = None
            if share:
                self.budget.give_back(share)

    def names(self, step: Step | None) -> Mapping[str, Any]:
        """What `step`'s templates see: the include's parameters over the case's scope, over the
        included file's defaults."""
        if step is None or step.include is None:
            return self.scope.values
        params, defaults = self._rendered(step.include)
        return ChainMap(params, self.scope.values, defaults)

    def text(self, step: Step | None, value: str) -> str:
        ready = self._ready
        if ready is not None and ready[0] is value:
            return ready[1]
        return render(value, self.names(step))

    def evaluate(self, step: Step | None, expression: str) -> Any:
        return evaluate(expression, self.names(step))

    def _rendered(self, include: Include) -> tuple[dict[str, Any], dict[str, Any]]:
        found = self._includes.get(include)
        if found is None:  # a RenderError leaves nothing behind: the next step that needs them tries again
            found = self._includes[include] = (self._values(include.params), self._values(include.defaults))
        return found

    def _values(self, values: dict[str, Any]) -> dict[str, Any]:
        """An include's parameters rendered, kept for the case's life: MAX_VALUES characters for all."""
        out, room = {}, MAX_VALUES
        for k, v in values.items():
            out[k] = render(v, self.scope.values, min(room, MAX_VALUE)) if isinstance(v, str) else v
            room -= len(out[k]) if isinstance(v, str) else 0
        return out


def preview_labels(result: CaseResult, case: Case, scope: Scope) -> None:
    """Steps that never ran are labelled by their templates; render in those what `scope` (the plan's
    variables, --var, the case's matrix values) settles, keep the rest as written (a capture, `env`), and
    hide the secrets, so a report shows `EHLO client.test` and `RCPT TO:<{{ found }}>`, not `EHLO {{ helo }}`."""
    renderer = StepRenderer(scope)
    for step, out in zip((*case.steps, *case.finally_steps), result.steps, strict=False):
        if out.status != SKIPPED or "{" not in out.label:
            continue
        try:
            names = dict(renderer.names(step))
        except RenderError:  # an include parameter that needs a capture: the case's own names only
            names = dict(scope.values)
        names.pop("env", None)  # the environment is read as a step runs, never to describe one
        out.label = scope.redactor.text(preview(out.label, names))


def skip_reason(case: Case, scope: Scope) -> str | None:
    """None when a case with `when:` should run (judged in the case's scope), else why it is skipped."""
    try:
        value = scope.evaluate(case.when or "")
    except RenderError as exc:
        return f"skipped: when {case.when!r} could not be evaluated: {exc}"
    return None if truth(value) else f"skipped: when {case.when!r} is false"
