"""runner/run/case.py: one case run whole against a scripted in-memory server (tests/support/peer.py).

Each test builds a plan from YAML text, as `smtprun` reads one, runs a case through `run_case` (or a
plan through `run_plans`) with the scripted server as its connector, and asserts the verdict, the
reasons and the transcript a user would read: the session, captures, `finally:`, connecting, the QUIT
after a failure. How replies are read is tests/unit/test_wire.py's; step actions, test_steps.py's.
"""

from __future__ import annotations

import asyncio

import pytest

from runner.plan.scope import Scope
from runner.results import FAILED, INFO, PASSED, RECV, SEND, SKIPPED
from runner.run.case import CaseRun, RunningCase, run_case
from runner.run.context import StepContext
from runner.run.execute import RunOptions, run_plans
from tests.support.engine import (
    BANNER,
    BASIC,
    EHLO,
    HEAD,
    QUIT,
    TEMPORARY,
    failed_step,
    members,
    plan_of,
    run,
    transcript,
)
from tests.support.peer import Close, Expect, Handshake, Say, ScriptedServer


def test_a_whole_session_passes_and_its_transcript_is_the_dialogue():
    server = ScriptedServer([
        BANNER, *EHLO,
        Expect(b"MAIL FROM:<a@client.test>\r\n"), Say(b"250 2.1.0 Ok\r\n"),
        Expect(b"RCPT TO:<b@peer.test>\r\n"), Say(b"250 2.1.5 Ok\r\n"),
        Expect(b"DATA\r\n"), Say(b"354 go ahead\r\n"),
        Expect(b"Subject: hi\r\n\r\n..dot\r\n.\r\n"), Say(b"250 2.0.0 Ok: queued as 4F2\r\n"),
        *QUIT,
    ])
    result = run(plan_of(BASIC), server)
    assert result.status == PASSED, result.reason
    server.assert_done()
    assert [s.status for s in result.steps] == [PASSED] * 7
    assert result.peer == "192.0.2.25:25"
    assert server.attempts == [("mx.peer.test", 25, "mx.peer.test")]
    wire = [(d, b) for d, b in transcript(result) if d != INFO]
    assert wire[:3] == [(RECV, b"220 mx.peer.test ESMTP ready\r\n"), (SEND, b"EHLO client.test\r\n"),
                        (RECV, EHLO[1].data)]
    assert (SEND, b"Subject: hi\r\n\r\n..dot\r\n.\r\n") in wire  # dot-stuffed, one entry
    assert server.connections[0].client_closed and not server.connections[0].aborted


def test_captures_flow_into_later_steps():
    plan = plan_of("""\
        cases:
          - name: capture
            steps:
              - expect: 220
                capture: {host: '^(\\S+)'}
              - send: "EHLO {{ host }}"
                expect: 250
              - send: "MAIL FROM:<a@client.test>"
                expect: 250
                capture: {queue: 'queued as (\\w+)'}
              - send: "NOOP {{ queue }} from {{ host }}"
                expect: 250
        """)
    server = ScriptedServer([BANNER, Expect(b"EHLO mx.peer.test\r\n"), Say(b"250 mx.peer.test\r\n"),
                             Expect(b"MAIL FROM:<a@client.test>\r\n"), Say(b"250 2.1.0 queued as Q42\r\n"),
                             Expect(b"NOOP Q42 from mx.peer.test\r\n"), Say(b"250 ok\r\n")])
    scope = Scope.for_plan(plan)
    result = asyncio.run(run_case(CaseRun(plan, plan.cases[0], plan.target, scope, learn=True, connect=server.connect)))
    assert result.status == PASSED, result.reason
    server.assert_done()
    assert result.steps[2].captures == {"queue": "Q42"}
    assert scope.learned["queue"] == "Q42" and scope.learned["host"] == "mx.peer.test"  # for the next case
    assert scope.learned["ehlo"] == {}  # a one-line EHLO reply offers no keywords


FINALLY = """\
cases:
  - name: finally
    steps:
      - expect: 220
      - send: "RCPT TO:<nobody@peer.test>"
        expect: 250
      - send: NOOP
        expect: 250
    finally:
      - send: QUIT
        expect: 221
"""


def test_finally_steps_run_after_a_failure():
    server = ScriptedServer([BANNER, Expect(b"RCPT TO:<nobody@peer.test>\r\n"), Say(b"550 5.1.1 no such user\r\n"),
                             *QUIT])
    result = run(plan_of(FINALLY), server)
    assert result.status == FAILED
    assert result.reason == "step 2 (<plan>:7): expected 250, got 550 5.1.1 no such user"
    assert [s.status for s in result.steps] == [PASSED, FAILED, SKIPPED, PASSED]
    server.assert_done()


def test_finally_steps_do_not_run_on_a_closed_connection():
    server = ScriptedServer([BANNER, Expect(b"RCPT TO:<nobody@peer.test>\r\n"), Say(b"421 4.4.2 bye\r\n"), Close()])
    result = run(plan_of(FINALLY), server)
    assert result.reason == "step 2 (<plan>:7): expected 250, got 421 4.4.2 bye" + TEMPORARY
    assert result.steps[-1].status == SKIPPED and result.steps[-1].reason == "not run: the connection is closed"


def test_a_refused_connection_fails_the_case_and_no_step_runs():
    result = run(plan_of(FINALLY), ScriptedServer(ConnectionRefusedError(111, "Connection refused")))
    assert result.status == FAILED
    assert result.reason == "cannot connect to mx.peer.test:25: Connection refused"
    assert [(s.status, s.reason) for s in result.steps] == [(SKIPPED, None)] * 4


def test_implicit_tls_facts_come_from_the_connection():
    plan = plan_of("""\
        cases:
          - name: implicit
            steps:
              - expect: 220
              - expect_tls: {min_version: TLSv1.2, verified: false}
        """, head=HEAD.replace("timeout: 2}", "timeout: 2, tls: implicit, verify: false}"))
    server = ScriptedServer([Handshake(version="TLSv1.2"), BANNER])
    result = run(plan, server)
    assert result.status == PASSED, result.reason
    assert result.tls == {"version": "TLSv1.2", "cipher": "TLS_AES_256_GCM_SHA384", "verified": False}


def test_a_session_provides_all_a_step_action_may_use():
    plan = plan_of(FINALLY)
    scope = Scope.for_plan(plan)
    session = RunningCase(CaseRun(plan, plan.cases[0], plan.target, scope), scope.for_case(plan, plan.cases[0]))
    assert not [n for n in members(StepContext) if not hasattr(RunningCase, n) and n not in vars(session)]


REFUSED = """\
cases:
  - name: refused
    steps:
      - expect: 220
      - send: "RCPT TO:<nobody@peer.test>"
        expect: 250
"""


def test_a_failed_case_in_step_ends_with_quit():
    server = ScriptedServer([BANNER, Expect(b"RCPT TO:<nobody@peer.test>\r\n"), Say(b"550 5.1.1 no such user\r\n"),
                             *QUIT])
    result = run(plan_of(REFUSED), server)
    assert result.status == FAILED
    server.assert_done()
    assert transcript(result)[-4:] == [(INFO, b"the case failed: ending the session with QUIT"),
                                       (SEND, b"QUIT\r\n"), (RECV, b"221 2.0.0 Bye\r\n"),
                                       (INFO, b"client closed the connection")]
    assert server.connections[0].client_closed and not server.connections[0].aborted


@pytest.mark.parametrize("where", ["target", "case"])
def test_quit_on_failure_false_drops_the_connection(where):
    text = REFUSED.replace("    steps:", "    quit_on_failure: false\n    steps:") if where == "case" else REFUSED
    head = HEAD.replace("timeout: 2}", "timeout: 2, quit_on_failure: false}") if where == "target" else HEAD
    server = ScriptedServer([BANNER, Expect(b"RCPT TO:<nobody@peer.test>\r\n"), Say(b"550 5.1.1 no such user\r\n")])
    result = run(plan_of(text, head), server)
    assert result.status == FAILED
    assert SEND not in [d for d, b in transcript(result) if b == b"QUIT\r\n"]
    assert server.connections[0].aborted


@pytest.mark.parametrize(("after", "why"), [
    ([], "a timeout: the late reply would be read as QUIT's"),
    ([Say(b"250-half")], "mid-reply"),
    ([Say(b"250 o\x00k\r\n")], "a protocol error"),
])
def test_no_quit_when_the_session_is_out_of_step(after, why):
    plan = plan_of(REFUSED.replace('expect: 250\n', 'expect: 250\n        timeout: 0.2\n'))
    server = ScriptedServer([BANNER, Expect(b"RCPT TO:<nobody@peer.test>\r\n"), *after])
    result = run(plan, server)
    assert result.status == FAILED
    assert (SEND, b"QUIT\r\n") not in transcript(result), why


def test_a_session_deadline_during_the_quit_keeps_the_failure_that_came_before():
    head = HEAD.replace("timeout: 2}", "timeout: 2, session_timeout: 0.3}")
    server = ScriptedServer([BANNER, Expect(b"RCPT TO:<nobody@peer.test>\r\n"), Say(b"550 5.1.1 no such user\r\n"),
                             Expect(b"QUIT\r\n")])  # and no 221
    result = run(plan_of(REFUSED, head), server)
    assert result.reason == "step 2 (<plan>:7): expected 250, got 550 5.1.1 no such user"
    assert (INFO, b"QUIT: session deadline of 0.3s reached") in transcript(result)


def test_the_expected_line_shows_a_templated_text_as_rendered():
    plan = plan_of("""\
        vars: {outside: someone@elsewhere.test}
        cases:
          - name: relay
            steps:
              - expect: 220
              - send: "RCPT TO:<{{ outside }}>"
                expect: {code: 550, text: "Invalid recipient: <{{ outside }}>"}
        """)
    server = ScriptedServer([BANNER, Expect(b"RCPT TO:<someone@elsewhere.test>\r\n"),
                             Say(b"550 Relay denied\r\n")])
    step = failed_step(run(plan, server))
    assert step.expected == "550, text matching /Invalid recipient: <someone@elsewhere.test>/"
    assert step.reason == ("expected text matching /Invalid recipient: <someone@elsewhere.test>/, "
                           "got 550 Relay denied")


def test_a_step_not_run_shows_the_message_id_the_session_used():
    plan = plan_of("""\
        cases:
          - name: one id
            steps:
              - expect: 220
              - send: "MAIL FROM:<a@client.test> ENVID={{ message_id }}"
                expect: 250
              - send: "NOOP {{ message_id }}"
                expect: 250
        """)
    server = ScriptedServer([BANNER, Expect(until=b"\r\n"), Say(b"550 5.7.1 no\r\n"), *QUIT])
    result = run_plans([plan], RunOptions(connect=server.connect, jobs=1)).plans[0].cases[0]
    sent = server.connections[0].writes[0].decode()
    used = sent.split("ENVID=")[1].strip()
    assert result.steps[2].status == SKIPPED
    assert result.steps[2].label == f"NOOP {used}"
