"""The `smuggle:` step and the pauses of `raw:` lists: bytes in pieces, with time between them.

`smuggle: {ending, pause, sender, rcpt}` runs after DATA's 354. It writes the pieces of
runner/smtp/smuggling.py one by one, listening during each pause, then waits for the reply to
the real end of data and a pause more for any reply after it, and sets the step's verdict. A
vulnerable server fails the step with that verdict as the reason; a refusal passes, saying so.
"""

from __future__ import annotations

import asyncio
import time

from runner.errors import StepFailed
from runner.plan.options import Smuggle
from runner.plan.types import Step
from runner.results import StepResult
from runner.run.context import StepContext
from runner.smtp import smuggling

__all__ = ["check_pauses", "do_smuggle", "pause"]


def check_pauses(what: str, total: float, deadline: float) -> None:
    """The step's timeout bounds its pauses too: refuse up front pauses that cannot fit in it."""
    left = deadline - time.monotonic()
    if total >= left:
        raise StepFailed(f"{what}: its pauses ({total:g}s in all) do not fit in the step's timeout "
                         f"({left:.1f}s left): raise timeout: or shorten the pauses")


async def pause(seconds: float, deadline: float) -> None:
    await asyncio.sleep(max(0.0, min(seconds, deadline - time.monotonic())))


def _label(ending: str, sender: str, rcpt: str, seconds: float) -> str:
    return (f"smuggle {smuggling.ending_name(ending)}: MAIL FROM:<{sender}> RCPT TO:<{rcpt}> DATA after it, "
            f"in pieces {seconds:g}s apart")


async def do_smuggle(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    opts: Smuggle = step.value
    ending, seconds = opts.ending, opts.pause
    sender, rcpt = session.text(opts.sender), session.text(opts.rcpt)
    out.label = session.redactor.text(_label(ending, sender, rcpt, seconds))
    out.expected = "one message (one reply, after the real end of data), or a refusal"
    pieces = smuggling.pieces(ending, sender, rcpt)
    check_pauses("smuggle", seconds * len(pieces), deadline)  # four between the pieces, one after them
    heard: list[smuggling.Heard] = []
    closed = False
    for n, piece in enumerate(pieces, start=1):
        if closed or not await session.send_part(piece.encode("utf-8"), deadline):
            closed = True
            break
        if n < len(pieces):  # what comes in the pause came before the real end of data
            replies, closed = await session.listen(min(deadline, time.monotonic() + seconds))
            heard += [smuggling.Heard(r, early=True) for r in replies]
    heard, closed = await _rest(session, heard, closed, seconds, deadline)
    found = smuggling.verdict(ending, heard, closed)
    if found is None:
        raise StepFailed("timed out waiting for a reply to the end of data")
    out.verdict = session.redactor.text(found.text)
    shown = heard[1] if found.word == smuggling.VULNERABLE and len(heard) > 1 else heard[0] if heard else None
    out.reply = shown.reply if shown else None
    if found.word == smuggling.VULNERABLE:
        raise StepFailed(out.verdict, out.reply)
    session.note(f"smuggling verdict: {out.verdict}")
    return True


async def _rest(session: StepContext, heard: list[smuggling.Heard], closed: bool, seconds: float,
                deadline: float) -> tuple[list[smuggling.Heard], bool]:
    """After the last piece: its reply (the real end of data is owed one), before the deadline; then
    any more within one more pause (a server that took the fake ending still owes the rest theirs)."""
    if not closed:
        replies, closed = await session.listen(deadline, most=1)
        heard = heard + [smuggling.Heard(r, early=False) for r in replies]
    while heard and not closed and len(heard) < smuggling.REPLIES_IF_TAKEN:
        replies, closed = await session.listen(min(deadline, time.monotonic() + seconds))
        if not replies:
            break
        heard += [smuggling.Heard(r, early=False) for r in replies]
    return heard, closed
