"""runner/run/steps.py: what step actions do on the wire, against the scripted in-memory server.

`pipeline:` sends its group in one write and judges the replies in order, `starttls:` upgrades and
voids what EHLO said, `data_size:` sends a generated body. Each test runs a whole case
(tests/support/engine.py) and asserts what a user would read.
"""

from __future__ import annotations

from runner.results import FAILED, INFO, PASSED
from tests.support.engine import BANNER, EHLO, QUIT, STARTTLS, failed_step, plan_of, run, transcript
from tests.support.peer import Expect, Handshake, Say, ScriptedServer, body


def test_pipelined_replies_are_judged_in_order():
    plan = plan_of("""\
        cases:
          - name: pipelined
            steps:
              - expect: 220
              - send: EHLO client.test
                expect: 250
              - pipeline:
                  - {send: "MAIL FROM:<a@client.test>", expect: 250}
                  - {send: "RCPT TO:<b@peer.test>", expect: 250}
                  - {send: "RCPT TO:<c@peer.test>", expect: 550}
                  - {send: DATA, expect: 354}
        """)
    group = b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@peer.test>\r\nRCPT TO:<c@peer.test>\r\nDATA\r\n"
    replies = [Say(b"250 2.1.0 Ok\r\n"), Say(b"250 2.1.5 Ok\r\n"), Say(b"550 5.1.1 no such user\r\n"),
               Say(b"354 go ahead\r\n")]
    server = ScriptedServer([BANNER, *EHLO, Expect(group), *replies])
    result = run(plan, server)
    assert result.status == PASSED, result.reason
    assert group in server.connections[0].writes  # one write for the whole group (RFC 2920)

    wrong = [Say(b"250 2.1.0 Ok\r\n"), Say(b"550 5.1.1 no such user\r\n"), Say(b"250 2.1.5 Ok\r\n"),
             Say(b"354 go ahead\r\n")]
    result = run(plan, ScriptedServer([BANNER, *EHLO, Expect(group), *wrong]))
    assert result.status == FAILED
    assert failed_step(result).reason == ("reply 2 of 4 (RCPT TO:<b@peer.test>): "
                                          "expected 250, got 550 5.1.1 no such user")


def test_starttls_upgrades_and_voids_what_ehlo_said():
    server = ScriptedServer([
        BANNER, *EHLO, Expect(b"STARTTLS\r\n"), Say(b"220 2.0.0 Ready to start TLS\r\n"), Handshake(),
        Expect(b"EHLO client.test\r\n"), Say(b"250-mx.peer.test\r\n250 AUTH PLAIN\r\n"), *QUIT,
    ])
    result = run(plan_of(STARTTLS), server)
    assert result.status == PASSED, result.reason
    server.assert_done()
    assert result.steps[3].status == PASSED  # its `when:` saw no keywords after the handshake (RFC 3207 §4.2)
    assert result.tls["version"] == "TLSv1.3" and result.tls["san"] == ["mx.peer.test"]
    assert server.connections[0].tls_object.server_name == "mx.peer.test"
    assert any(d == INFO and b.startswith(b"TLS established: TLSv1.3") for d, b in transcript(result))


def test_a_whole_session_with_a_body_of_any_content():
    plan = plan_of("""\
        cases:
          - name: generated
            steps:
              - expect: 220
              - send: DATA
                expect: 354
              - data_size: 200KB
                expect: 250
        """)
    server = ScriptedServer([BANNER, Expect(b"DATA\r\n"), Say(b"354 go\r\n"), body(), Say(b"250 2.0.0 Ok\r\n")])
    result = run(plan, server)
    assert result.status == PASSED, result.reason
    assert len(server.connections[0].sent) > 200_000
