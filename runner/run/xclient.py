"""The `xclient` and `xforward` steps: Postfix's commands by which a proxy or content filter names the
real client. Sent whether or not the server offered them, so a plan can prove a server refuses them."""

from __future__ import annotations

from runner.errors import StepFailed
from runner.plan.options import Attributes
from runner.plan.types import Step
from runner.results import StepResult
from runner.run.context import StepContext
from runner.smtp import xclient
from runner.smtp.protocol import encode_line


async def do_xclient(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    """XCLIENT (its 220 is a new greeting: the session's EHLO keywords are void after it)."""
    await _send(session, "XCLIENT", step.value, out, deadline)
    return False


async def do_xforward(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    """XFORWARD (a 250 to it changes what the server logs, not the session)."""
    await _send(session, "XFORWARD", step.value, out, deadline)
    return False


async def _send(session: StepContext, verb: str, given: Attributes, out: StepResult, deadline: float) -> None:
    attributes = {name: session.text(str(value)) for name, value in given.items}
    try:
        line = xclient.command_line(verb, attributes)
        data = encode_line(line)
    except ValueError as exc:
        raise StepFailed(str(exc)) from None
    out.label = session.redactor.text(line)
    if verb not in session.keywords:
        session.note(f"{verb} was not offered in the EHLO reply; sent anyway")
    await session.send(data, deadline)
