"""Whole cases against the scripted in-memory server (tests/support/peer.py): plans from YAML text, the
runner, and the dialogue pieces the engine's tests share. No socket is opened.

    result = run(plan_of(BASIC), ScriptedServer([BANNER, *EHLO, ..., *QUIT]))
"""

from __future__ import annotations

import asyncio
import textwrap
from typing import Any

from runner.plan.build import build_plan
from runner.plan.load import load_text
from runner.plan.schema import validate
from runner.plan.scope import Scope
from runner.plan.types import Plan
from runner.results import FAILED, CaseResult
from runner.run.case import CaseRun, run_case
from tests.support.peer import Close, Expect, Say, ScriptedServer

__all__ = ["BANNER", "BASIC", "EHLO", "HEAD", "QUIT", "STARTTLS", "TEMPORARY", "failed_step", "members", "plan_of",
           "run", "transcript"]

BANNER = Say(b"220 mx.peer.test ESMTP ready\r\n")
EHLO = [Expect(b"EHLO client.test\r\n"),
        Say(b"250-mx.peer.test greets client.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")]
QUIT = [Expect(b"QUIT\r\n"), Say(b"221 2.0.0 Bye\r\n"), Close()]

HEAD = """\
name: engine
target: {host: mx.peer.test, port: 25, timeout: 2}
"""

TEMPORARY = " (a temporary failure: the server asks to try again later; `retry:` tries the case again)"


def plan_of(text: str, head: str = HEAD) -> Plan:
    """A plan from YAML text (dedented, after `head`), validated as `smtprun` validates a file."""
    loaded = load_text(head + textwrap.dedent(text))
    problems = validate(loaded)
    assert not problems, [p.render() for p in problems]
    return build_plan(loaded)


def run(plan: Plan, server: ScriptedServer, case: int = 0, **options: Any) -> CaseResult:
    return asyncio.run(run_case(CaseRun(plan, plan.cases[case], plan.target, Scope.for_plan(plan),
                                connect=server.connect, **options)))


def transcript(result: CaseResult) -> list[tuple[str, bytes]]:
    return [(e.direction, e.data) for e in result.transcript]


def failed_step(result: CaseResult) -> Any:
    return next(s for s in result.steps if s.status == FAILED)


def members(protocol: type) -> set[str]:
    """The public names a Protocol class declares: its methods, properties and annotated attributes."""
    return {n for n in (*vars(protocol), *protocol.__annotations__) if not n.startswith("_")}


BASIC = """\
cases:
  - name: basic
    steps:
      - expect: 220
      - send: EHLO client.test
        expect: {code: 250, keywords: [PIPELINING]}
      - send: "MAIL FROM:<a@client.test>"
        expect: 250
      - send: "RCPT TO:<b@peer.test>"
        expect: 250
      - send: DATA
        expect: 354
      - data: "Subject: hi\\n\\n.dot\\n"
        expect: 250
      - send: QUIT
        expect: 221
"""

STARTTLS = """\
cases:
  - name: tls
    steps:
      - expect: 220
      - send: EHLO client.test
        expect: 250
      - starttls: {verify: true}
      - send: EHLO client.test
        when: "'PIPELINING' not in ehlo"
        expect: {code: 250, absent: [STARTTLS]}
      - expect_tls: {min_version: TLSv1.2, name: mx.peer.test}
      - send: QUIT
        expect: 221
"""
