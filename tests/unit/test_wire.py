"""runner/run/wire.py: a case's connection as its steps use it, against the scripted in-memory server.

How replies are read (split anywhere, slow, late, cut off), bytes no command asked for, the server's
close, a body refused midway and plaintext around the TLS handshake. Each test runs a whole case
(tests/support/engine.py) and asserts the verdict, the reason and the transcript a user would read.
"""

from __future__ import annotations

import time

import pytest

from runner.results import FAILED, INFO, PASSED, RECV, SKIPPED
from tests.support.engine import BANNER, BASIC, EHLO, QUIT, STARTTLS, TEMPORARY, failed_step, plan_of, run, transcript
from tests.support.peer import Close, Expect, Handshake, Pause, Reset, Say, ScriptedServer


def test_a_reply_split_anywhere_is_one_reply():
    pieces = [b"2", b"50-mx.peer", b".test greets\r", b"\n250-PIPE", b"LINING\r\n250 8BIT", b"MIME\r\n"]
    server = ScriptedServer([BANNER, Expect(b"EHLO client.test\r\n"), *map(Say, pieces), *QUIT])
    plan = plan_of("""\
        cases:
          - name: split
            steps:
              - expect: 220
              - send: EHLO client.test
                expect: {code: 250, keywords: [PIPELINING, 8BITMIME]}
              - send: QUIT
                expect: 221
        """)
    result = run(plan, server)
    assert result.status == PASSED, result.reason
    server.assert_done()
    assert result.steps[1].reply.lines == ("mx.peer.test greets", "PIPELINING", "8BITMIME")


FORGED = b"250-forged\r\n250 AUTH PLAIN\r\n"


AFTER_220 = "of plaintext after its 220 to STARTTLS"


AROUND_HANDSHAKE = "around the TLS handshake, before the client spoke"


@pytest.mark.parametrize(("after_220", "where"), [
    ([Say(b"220 2.0.0 Ready\r\n" + FORGED)], AFTER_220),  # in the same packet as the 220
    ([Say(b"220 2.0.0 Ready\r\n"), Say(FORGED)], AFTER_220),  # in the next one
    ([Say(b"220 2.0.0 Ready\r\n"), Handshake(), Say(FORGED)], AROUND_HANDSHAKE),  # raced the handshake
])
def test_plaintext_after_the_starttls_220_is_response_injection(after_220, where):
    server = ScriptedServer([BANNER, *EHLO, Expect(b"STARTTLS\r\n"), *after_220])
    result = run(plan_of(STARTTLS), server)
    assert result.status == FAILED
    step = failed_step(result)
    assert step.index == 3 and step.reply.code == 220
    assert step.reason.startswith(f"server sent 28 bytes {where}: ")
    assert "response injection (RFC 3207 §4.2, cf. CVE-2011-0411)" in step.reason
    assert (RECV, FORGED) in transcript(result)  # shown as it came
    assert result.tls is None
    assert server.connections[0].aborted


def test_a_421_at_any_time_is_the_next_reply_not_unsolicited_bytes():
    server = ScriptedServer([BANNER, *EHLO, Say(b"421 4.3.2 mx.peer.test shutting down\r\n"), Close()])
    result = run(plan_of(BASIC), server)
    assert result.status == FAILED
    assert result.reason == "step 3 (<plan>:9): expected 250, got 421 4.3.2 mx.peer.test shutting down" + TEMPORARY
    assert [s.status for s in result.steps] == [PASSED, PASSED, FAILED] + [SKIPPED] * 4


def test_bytes_no_command_asked_for_fail_the_next_send():
    server = ScriptedServer([BANNER, *EHLO, Say(b"250 surprise\r\n")])
    result = run(plan_of(BASIC), server)
    assert failed_step(result).reason == ("the server sent 14 bytes that no command asked for, "
                                          "before 'MAIL FROM:<a@client.test>'")
    assert transcript(result)[-2:] == [(RECV, b"250 surprise\r\n"), (INFO, b"client dropped the connection")]


def test_after_raw_replies_cannot_be_counted_and_are_not_unsolicited():
    plan = plan_of("""\
        cases:
          - name: raw
            steps:
              - expect: 220
              - raw: "NOOP\\r\\nNOOP\\r\\n"
                expect: 250
              - send: QUIT
                expect: 250
        """)
    server = ScriptedServer([BANNER, Expect(b"NOOP\r\nNOOP\r\n"), Say(b"250 ok 1\r\n"), Say(b"250 ok 2\r\n"),
                             Expect(b"QUIT\r\n")])
    result = run(plan, server)
    assert result.status == PASSED, result.reason  # QUIT's "reply" is the second NOOP's
    server.assert_done()


def test_a_silent_server_fails_the_step_at_its_deadline():
    plan = plan_of("""\
        cases:
          - name: silent
            steps:
              - expect: 220
              - send: EHLO client.test
                expect: 250
                timeout: 0.2
        """)
    t0 = time.monotonic()
    result = run(plan, ScriptedServer([BANNER, Expect(b"EHLO client.test\r\n")]))
    assert 0.2 <= time.monotonic() - t0 < 1.5
    assert failed_step(result).reason == "no reply within 0.2s"

    result = run(plan, ScriptedServer([BANNER, Expect(b"EHLO client.test\r\n"), Say(b"250-half a reply\r\n")]))
    assert failed_step(result).reason == "timed out mid-reply after 18 bytes (no complete reply within 0.2s)"
    assert transcript(result)[-2:] == [(RECV, b"250-half a reply\r\n"), (INFO, b"client dropped the connection")]


def test_a_slow_reply_inside_the_deadline_is_taken():
    plan = plan_of("""\
        cases:
          - name: slow
            steps:
              - expect: 220
                timeout: 1
        """)
    result = run(plan, ScriptedServer([Pause(0.05), Say(b"220 mx"), Pause(0.05), Say(b".peer.test\r\n")]))
    assert result.status == PASSED, result.reason
    assert result.steps[0].reply.lines == ("mx.peer.test",)


CLOSED = """\
cases:
  - name: closed
    steps:
      - expect: 220
      - send: QUIT
        expect: 221
      - expect: closed
        timeout: 0.2
"""


@pytest.mark.parametrize(("after", "status", "reason"), [
    ([Close()], PASSED, None),
    ([Reset()], PASSED, None),  # reset: closed all the same
    ([], FAILED, "expected the server to close the connection; it stayed open"),
    ([Say(b"250 still here\r\n")], FAILED, "expected the server to close the connection, got 250 still here"),
    ([Say(b"250-still"), Close()], FAILED, "connection closed mid-reply after 9 bytes"),
    ([Say(b"250-still")], FAILED, "timed out mid-reply after 9 bytes"),
])
def test_expect_closed(after, status, reason):
    server = ScriptedServer([BANNER, Expect(b"QUIT\r\n"), Say(b"221 2.0.0 Bye\r\n"), *after])
    result = run(plan_of(CLOSED), server)
    assert result.status == status, result.reason
    if reason is None:
        assert (INFO, b"server closed the connection") in transcript(result)
    else:
        assert failed_step(result).reason == reason


def test_a_body_the_server_refuses_midway_is_the_steps_answer():
    plan = plan_of("""\
        cases:
          - name: too big
            steps:
              - expect: 220
              - send: DATA
                expect: 354
              - data_size: 300KB
                expect: 552
        """)
    server = ScriptedServer([BANNER, Expect(b"DATA\r\n"), Say(b"354 go\r\n"),
                             Expect(b"Subject: smtprun generated message\r\n\r\n"),
                             Say(b"552 5.3.4 message too big\r\n"), Close()])
    result = run(plan, server)
    assert result.status == PASSED, result.reason
    notes = [b for d, b in transcript(result) if d == INFO]
    assert any(b.startswith(b"the server answered and stopped taking data") for b in notes)
