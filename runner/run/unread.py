"""No step is judged on a reply that an earlier step left unread.

A step without `expect:` or `capture:` sends and moves on; its reply is still owed, and the next
reply read is that one. A later step that sends a command and judges the reply to it would be
judged on the earlier reply instead: Microsoft KB 153119 typed literally (a `data:` step without
`expect:`, then `send: "."` with `expect: 250`, then `QUIT`) passed on the message's 250, and QUIT
on Postfix's answer to the stray "." ("221 2.7.0 Error: I can break rules, too").

A plan says it means to read an earlier reply by reading it: an `expect:` step of its own, or a
`pipeline:`; after `raw:` the replies cannot be counted, and nothing is checked. So before such a
step sends, the replies earlier steps left unread are read, and the step fails naming the first
of them and what it was. The banner is no step's reply: a command sent before it is an early-talker
test, and is judged as written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from runner.errors import StepFailed
from runner.plan.replies import answers_own_command
from runner.plan.types import Step
from runner.results import StepResult
from runner.smtp.protocol import Reply

__all__ = ["settle"]


class _Wire(Protocol):
    step: Any
    smtp: Any  # runner.smtp.session.SmtpSession
    result: Any  # runner.results.CaseResult
    note: Callable[[str], None]

    async def reply(self, deadline: float) -> Reply: ...


async def settle(wire: _Wire, deadline: float) -> None:
    """Before the step in progress sends: when it judges the reply to its command and replies that
    earlier steps sent for are still owed, read them (so the transcript shows them and the session
    stays in step for a QUIT), then fail the step naming the first."""
    step = wire.step
    if not isinstance(step, Step) or not answers_own_command(step):
        return
    earlier = [o for o in wire.smtp.owed_to() if o is not step]  # what this step sent comes after them
    first = next((o for o in earlier if isinstance(o, Step)), None)
    if first is None:
        return
    wire.note(f"step {first.index} left its reply unread: reading it before step {step.index} sends")
    replies: list[Reply] = []
    failure = None
    try:
        for _ in earlier:
            replies.append(await wire.reply(deadline))
    except StepFailed as exc:
        failure = exc.reason
    raise StepFailed(_why(step, earlier, replies, failure, wire.result.steps))


def _why(step: Step, earlier: Sequence[object], replies: list[Reply], failure: str | None,
         results: list[StepResult]) -> str:
    """Which step's reply went unread and what it was, in a mail admin's words, and what to write instead."""
    steps = [o for o in earlier if isinstance(o, Step)]
    first = steps[0]
    label = next((r.label for r in results if r.index == first.index), first.action)
    where = f"line {first.line}" if first.file == step.file else f"{first.file}:{first.line}"
    at = earlier.index(first)
    what = f": {replies[at].summary()}" if at < len(replies) else f", and reading it now failed: {failure}"
    more = len(steps) - 1
    also = f" (and {more} more unread repl{'y' if more == 1 else 'ies'} after it)" if more else ""
    return (f"the reply to step {first.index} ({label}, {where}) was never read{what}{also}; step {step.index} "
            f"would have been judged on it, not on the reply to its own command (give step {first.index} an "
            "expect:, or read its reply with an expect: step)")
