"""A step's `dkim:` beside `data:` or `data_file:` checked before anything is sent: only a body step takes it,
its key file is there (resolved against the file that names it, like `message:`'s), and a `data_file:` to sign
is within what smtprun reads whole to sign (runner.mail.compose.MAX_SIGNED_BYTES)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runner import template
from runner.plan.actions import DATA_FILE, KINDS, named

if TYPE_CHECKING:
    from runner.plan.options import MessageDkim

__all__ = ["step_dkim"]

SIGNED = named("signed")  # the body steps a `dkim:` beside them signs
PlanFile = Callable[..., tuple[str, int]]  # runner.plan.stepbuilder.StepBuilder._plan_file
Problem = Callable[..., None]  # runner.plan.stepbuilder.StepBuilder.problem


def step_dkim(raw: dict[str, Any], action: str, value: Any, path: tuple[Any, ...], plan_file: PlanFile,
              problem: Problem) -> MessageDkim | None:
    """The step's `dkim:`, its key path resolved; None (and the problem said) where it cannot sign."""
    if "dkim" not in raw:
        return None
    from runner.plan.options import MessageDkim

    if action not in SIGNED:
        this = f"this step is {action}:" if action in KINDS else "this step sends nothing"
        problem(f"dkim: signs the body a {' or '.join(f'{name}:' for name in sorted(SIGNED))} step sends; {this}",
                (*path, "dkim"), key=True, hint=_elsewhere(action))
        return None
    given = raw["dkim"]
    key = plan_file("dkim key", given["key"], (*path, "dkim", "key"), confined=False)[0]
    if action == DATA_FILE and not template.is_template(value):
        _within_bound(value, (*path, "data_file"), problem)
    return MessageDkim.read({**given, "key": key})


def _elsewhere(action: str) -> str:
    """Where the `dkim:` goes instead: under the step type's own options when they have one (`message:`)."""
    kind = KINDS.get(action)
    typed = None if kind is None else kind.options_class()
    if typed is not None and "dkim" in (typed.schema_keys() or ()):
        return f"give it under {action}: ({action}: {{..., dkim: {{domain, selector, key}}}})"
    return "put it on the step that sends the message"


def _within_bound(resolved: str, path: tuple[Any, ...], problem: Problem) -> None:
    from runner.mail.compose import MAX_SIGNED_BYTES

    try:
        size = os.stat(resolved).st_size
    except OSError:  # said already, as the data_file was checked
        return
    if size > MAX_SIGNED_BYTES:
        problem(f"data_file {os.path.basename(resolved)} has {size} bytes: smtprun reads a file whole to sign it "
                f"with dkim:, at most {MAX_SIGNED_BYTES} bytes", path,
                hint="send it unsigned, or sign it beforehand")
