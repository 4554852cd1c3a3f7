"""What a mail admin's first plan trips on: a reply left unread and judged by the wrong step, a
data_file the delivery check cannot find, a mistyped host, a target listed twice, `wait:` for `sleep:`."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from runner.errors import PlanError
from runner.net.address import check_host, parse_hostport
from runner.plan.build import build_plan
from runner.plan.load import load_text
from runner.plan.schema import validate
from runner.plan.scope import Scope
from runner.plan.targets import read_targets
from runner.plan.types import Plan
from runner.results import FAILED, PASSED, SEND, CaseResult
from runner.run.case import CaseRun, run_case
from tests.support.cli import run, write_plan
from tests.support.peer import Close, Expect, Say, ScriptedServer, body

HEAD = "target: {host: mx.peer.test, port: 25, timeout: 1}\n"
BANNER = Say(b"220 mx.peer.test ESMTP\r\n")
ENVELOPE = [Expect(b"EHLO client.test\r\n"), Say(b"250 mx.peer.test\r\n"),
            Expect(b"MAIL FROM:<a@client.test>\r\n"), Say(b"250 2.1.0 Ok\r\n"),
            Expect(b"RCPT TO:<b@peer.test>\r\n"), Say(b"250 2.1.5 Ok\r\n"),
            Expect(b"DATA\r\n"), Say(b"354 End data with <CR><LF>.<CR><LF>\r\n")]
QUIT = [Expect(b"QUIT\r\n"), Say(b"221 2.0.0 Bye\r\n"), Close()]

# Microsoft KB 153119, typed literally: the body, then "." by hand, as at a telnet prompt.
KB_153119 = """\
steps:
  - expect: 220
  - send: EHLO client.test
    expect: 250
  - send: "MAIL FROM:<a@client.test>"
    expect: 250
  - send: "RCPT TO:<b@peer.test>"
    expect: 250
  - send: DATA
    expect: 354
  - data: |
      Subject: message test

      This is a test message.
  - send: "."
    expect: 250
  - send: QUIT
    expect: 221
"""


def plan_of(text: str) -> Plan:
    loaded = load_text(HEAD + textwrap.dedent(text))
    assert not validate(loaded)
    return build_plan(loaded)


def run_plan(plan: Plan, server: ScriptedServer) -> CaseResult:
    return asyncio.run(run_case(CaseRun(plan, plan.cases[0], plan.target, Scope.for_plan(plan),
                                        connect=server.connect)))


def sent(result: CaseResult) -> list[bytes]:
    return [e.data for e in result.transcript if e.direction == SEND]


# --- a reply left unread -------------------------------------------------------------------------------------------

def test_a_step_is_not_judged_on_the_reply_an_earlier_step_left_unread() -> None:
    server = ScriptedServer([BANNER, *ENVELOPE, body(), Say(b"250 2.0.0 Ok: queued as 4F2A1\r\n"), *QUIT])
    result = run_plan(plan_of(KB_153119), server)
    assert result.status == FAILED
    step = result.steps[6]
    assert (step.index, step.status) == (7, FAILED)
    assert step.reason == (
        "the reply to step 6 (message body (47 bytes), line 12) was never read: 250 2.0.0 Ok: queued as 4F2A1; "
        "step 7 would have been judged on it, not on the reply to its own command (give step 6 an expect:, "
        "or read its reply with an expect: step)")
    assert b".\r\n" not in sent(result)  # the stray "." is not sent: the session ends cleanly with QUIT
    assert sent(result)[-1] == b"QUIT\r\n"
    server.assert_done()


def test_a_reply_left_unread_that_never_comes_says_so() -> None:
    plan = plan_of("""\
        steps:
          - expect: 220
          - send: NOOP
          - send: QUIT
            expect: 221
        """)
    result = run_plan(plan, ScriptedServer([BANNER, Expect(b"NOOP\r\n")]))
    assert result.steps[2].reason.startswith(
        "the reply to step 2 (NOOP, line 4) was never read, and reading it now failed: no reply within 1s; step 3 ")


def test_replies_read_later_by_expect_steps_are_pipelining_by_hand() -> None:
    plan = plan_of("""\
        steps:
          - expect: 220
          - send: EHLO client.test
            expect: 250
          - send: "MAIL FROM:<a@client.test>"
          - send: "RCPT TO:<b@peer.test>"
          - expect: 250
          - expect: 250
          - send: DATA
            expect: 354
          - data: "Subject: x\\n\\nbody\\n"
            expect: 250
          - send: QUIT
        """)
    assert plan.warnings == ()
    script = [BANNER, *ENVELOPE, body(), Say(b"250 2.0.0 Ok\r\n"), Expect(b"QUIT\r\n"), Say(b"221 2.0.0 Bye\r\n")]
    result = run_plan(plan, ScriptedServer(script))
    assert result.status == PASSED, result.reason


def warnings_of(tmp_path: Path, text: str) -> tuple[str, list[str]]:
    plan = write_plan(tmp_path, text)
    code, out, err = run("validate", plan)
    assert (code, out) == (0, f"{plan}: ok (1 case)\n"), err
    return plan, err.splitlines()


def test_validation_warns_of_a_reply_left_unread_and_of_a_dot_after_data(tmp_path: Path) -> None:
    plan, lines = warnings_of(tmp_path, HEAD + KB_153119)
    assert lines == [
        f"{plan}:12:5: warning: data: without expect: the server's answer to the message is not read here, so "
        "step 7 (line 16) would take it for the reply to its own command: the run fails at that step",
        "      - data: |",
        "        ^",
        "    hint: give this step its expect: (250), or read the reply with an expect: step after it",
        f'{plan}:16:5: warning: send: "." right after the data: step 6, which already ended the message with '
        '<CRLF>.<CRLF> (RFC 5321 §4.1.1.4): this "." reaches the server as a command (Postfix logs "non-SMTP '
        'command", answers 221 and closes)',
        '      - send: "."',
        "        ^",
        "    hint: remove this step, and move its expect: to step 6",
    ]


def test_validation_warns_of_a_reply_never_read_while_commands_follow(tmp_path: Path) -> None:
    plan, lines = warnings_of(tmp_path, HEAD + "steps:\n  - expect: 220\n  - send: DATA\n    expect: 354\n"
                                              "  - data: hello\n  - send: QUIT\n")
    assert lines[0] == (f"{plan}:6:5: warning: data: without expect: the server's answer to the message is never "
                        "read, and step 4 (line 7) sends after it: nothing judges it")
    assert len([line for line in lines if "warning:" in line]) == 1  # the last QUIT's reply: nothing follows it


# --- data_file and expect_delivery ---------------------------------------------------------------------------------

def test_a_data_file_without_message_id_gets_the_cases_own_for_the_delivery_check(tmp_path: Path) -> None:
    (tmp_path / "body.eml").write_bytes(b"Subject: from a file\n\nHello.\n")
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    path = write_plan(tmp_path, HEAD + f"""\
steps:
  - expect: 220
  - send: EHLO client.test
    expect: 250
  - send: "MAIL FROM:<a@client.test>"
    expect: 250
  - send: "RCPT TO:<b@peer.test>"
    expect: 250
  - send: DATA
    expect: 354
  - data_file: body.eml
    expect: 250
  - send: QUIT
    expect: 221
  - expect_delivery: {{mailbox: "maildir:{maildir}", within: 0.2}}
""")
    plan = build_plan(load_text(Path(path).read_text(), path))
    script = [BANNER, *ENVELOPE, body(), Say(b"250 2.0.0 Ok\r\n"), *QUIT]
    result = run_plan(plan, ScriptedServer(script))
    message = sent(result)[4]
    assert message.startswith(b"Message-ID: <smtprun.") and message.endswith(b"\r\nSubject: from a file\r\n\r\n"
                                                                              b"Hello.\r\n.\r\n")
    assert result.steps[5].label == f"message body from {tmp_path / 'body.eml'}, Message-ID added"


def test_a_data_file_with_its_own_message_id_is_sent_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "body.eml").write_bytes(b"Message-ID: <mine@client.test>\nSubject: x\n\nHello.\n")
    path = write_plan(tmp_path, HEAD + f"""\
steps:
  - expect: 220
  - data_file: body.eml
  - expect_delivery: {{mailbox: "maildir:{tmp_path}", within: 0.2}}
""")
    plan = build_plan(load_text(Path(path).read_text(), path))
    result = run_plan(plan, ScriptedServer([BANNER, body(), Close()]))
    assert sent(result)[0] == b"Message-ID: <mine@client.test>\r\nSubject: x\r\n\r\nHello.\r\n.\r\n"


# --- host names ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "message"), [
    ("mail,smtprun.test", "not a host name: 'mail,smtprun.test' contains ',' (a host name is letters, digits and "
                          "hyphens between dots: RFC 1123 §2.1); did you mean 'mail.smtprun.test'?"),
    ("127.0.0.l", "not a host name: '127.0.0.l' looks like an IPv4 address with a typo; did you mean 127.0.0.1?"),
    ("192.168.O.1", "not a host name: '192.168.O.1' looks like an IPv4 address with a typo; did you mean "
                    "192.168.0.1?"),
    ("127.0.0.256", "not an IPv4 address: '127.0.0.256' (each of the four numbers is 0-255)"),
    ("127.0.0.1.", "not a host name: '127.0.0.1.' is an IPv4 address with a dot after it; did you mean 127.0.0.1?"),
    ("127.1", "not a host name: '127.1' ends in an all-numeric label (RFC 1123 §2.1: a host name's top-level label "
              "is alphabetic), and not an IPv4 address either"),
    ("-mail.example.com", "not a host name: '-mail.example.com' has a label that starts or ends with a hyphen "
                          "('-mail'; RFC 952, RFC 1123 §2.1)"),
    ("*.example.com", "not a host name: '*.example.com' contains '*' (a host name is letters, digits and hyphens "
                      "between dots: RFC 1123 §2.1)"),
])
def test_host_names_follow_rfc_1123(host: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_host(host)
    assert str(caught.value) == message


@pytest.mark.parametrize("host", ["mail.smtprun.test", "localhost", "3com.com", "1.2.3.io", "mx-1.example.com.",
                                  "bücher.example", "xn--bcher-kva.example", "dc_01.corp.example", "127.0.0.1", "::1"])
def test_good_host_names_pass(host: str) -> None:
    assert check_host(host) == host


def test_an_ipv6_address_whose_last_group_could_be_a_port_is_ambiguous() -> None:
    with pytest.raises(ValueError) as caught:
        parse_hostport("2001:db8::1:25")
    assert str(caught.value) == ("'2001:db8::1:25' is ambiguous: the IPv6 address 2001:db8::1:25, or 2001:db8::1 "
                                 "port 25? write [2001:db8::1]:25 for the port, or [2001:db8::1:25] for the address "
                                 "alone")
    assert parse_hostport("[2001:db8::1]:25") == ("2001:db8::1", 25)
    assert parse_hostport("[2001:db8::1:25]") == ("2001:db8::1:25", None)
    assert parse_hostport("2001:db8::25") == ("2001:db8::25", None)  # "2001:db8:" is no address: not ambiguous


def test_a_plan_with_a_mistyped_host_is_refused_with_the_address_meant(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, "target: {host: 127.0.0.l}\nsteps:\n  - expect: 220\n")
    code, _, err = run("validate", plan)
    assert code == 2
    assert err.splitlines()[0] == (f"{plan}:1:16: error: not a host name: '127.0.0.l' looks like an IPv4 address "
                                   "with a typo; did you mean 127.0.0.1?")


def test_one_target_listed_twice_in_two_spellings_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "fleet.txt"
    path.write_text("127.0.0.1\n127.0.0.1:25\n[2001:db8::1]:587\n[2001:DB8:0::1]:587\nmx:example.org:25\n"
                    "mx:Example.org\n")
    with pytest.raises(PlanError) as caught:
        read_targets(str(path))
    assert [(p.location.line, p.message, p.hint) for p in caught.value.problems] == [
        (2, "127.0.0.1:25 and 127.0.0.1 (line 1) are one target when the plan's port is 25: 127.0.0.1 takes the "
            "plan's port", "write the port on both lines (127.0.0.1:PORT), or keep one of them"),
        (4, "duplicate target [2001:db8:0::1]:587 (first on line 3 as [2001:db8::1]:587)", None),
        (6, "mx:example.org and mx:example.org:25 (line 5) are one target when the plan's port is 25: "
            "mx:example.org takes the plan's port", "write the port on both lines (mx:example.org:PORT), or keep "
            "one of them"),
    ]


def test_a_comma_in_a_plain_lists_first_host_is_not_taken_for_a_csv_header(tmp_path: Path) -> None:
    path = tmp_path / "fleet.txt"
    path.write_text("mail,smtprun.test\n")
    with pytest.raises(PlanError) as caught:
        read_targets(str(path))
    assert caught.value.problems[0].hint == ("a comma in the first line makes the file a CSV list, whose header row "
                                             "starts with 'target'; for a plain list, did you mean "
                                             "mail.smtprun.test?")


# --- other words for a step's keys ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("written", "where", "meant"), [
    ("wait: 2", "step", "sleep"), ("pause: 2", "step", "sleep"), ("reply: 250", "step", "expect"),
    ("body: hi", "step", "data"), ("tls: {}", "step", "starttls"), ("ignore_errors: true", "step",
                                                                     "continue_on_failure"),
])
def test_another_word_for_a_step_key_gets_did_you_mean(tmp_path: Path, written: str, where: str, meant: str) -> None:
    plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1}}\nsteps:\n  - expect: 220\n  - {written}\n")
    code, _, err = run("validate", plan)
    assert code == 2
    assert f"error: unknown key '{written.split(':')[0]}' in {where}" in err
    assert f"    hint: did you mean '{meant}'?" in err.splitlines()


def test_another_word_is_offered_only_where_its_key_is_allowed(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, "target: {server: 127.0.0.1}\nsteps:\n  - expect: 220\n")
    assert "    hint: did you mean 'host'?" in run("validate", plan)[2].splitlines()
    plan = write_plan(tmp_path, "server: 127.0.0.1\nsteps:\n  - expect: 220\n")
    assert "    hint: did you mean 'target'?" in run("validate", plan)[2].splitlines()
