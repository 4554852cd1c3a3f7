"""Bytes in pieces: `raw:` lists with pauses, and the `smuggle:` step's verdict (CVE-2023-51764/5/6).

Cases run against the scripted in-memory server (tests/support/peer.py); what each server does is
what tests/integration/test_library_mtas.py measures on Postfix, Exim and OpenSMTPD.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from runner.console import Console
from runner.plan import read_plan
from runner.plan.options import Smuggle
from runner.report import write_html_reports
from runner.results import FAILED, PASSED, SEND, SKIPPED
from runner.smtp.protocol import Reply
from runner.smtp.smuggling import NOT_VULNERABLE, REFUSED, VULNERABLE, Heard, ending_name, pieces, verdict
from tests.support.engine import BANNER, plan_of, run
from tests.support.peer import Close, Expect, Say, ScriptedServer, body
from tests.support.results import make_run
from tests.support.validation import only_problem

ENVELOPE = [BANNER, Expect(b"EHLO client.test\r\n"), Say(b"250-mx.peer.test\r\n250 PIPELINING\r\n"),
            Expect(b"MAIL FROM:<a@client.test>\r\n"), Say(b"250 2.1.0 Ok\r\n"),
            Expect(b"RCPT TO:<b@peer.test>\r\n"), Say(b"250 2.1.5 Ok\r\n"),
            Expect(b"DATA\r\n"), Say(b"354 End data with <CR><LF>.<CR><LF>\r\n")]
QUIT = [Expect(b"QUIT\r\n"), Say(b"221 2.0.0 Bye\r\n"), Close()]
FIRST, MAIL, RCPT, DATA, LAST = (p.encode() for p in pieces("\n.\n", "admin@client.test", "b@peer.test"))

SMUGGLE = """\
vars: {sender: a@client.test, rcpt: b@peer.test}
cases:
  - name: "<LF>.<LF>"
    steps:
      - expect: 220
      - send: EHLO client.test
        expect: 250
      - send: "MAIL FROM:<{{ sender }}>"
        expect: 250
      - send: "RCPT TO:<{{ rcpt }}>"
        expect: 250
      - send: DATA
        expect: 354
      - smuggle: {ending: "\\n.\\n", pause: 0.05, sender: admin@client.test}
    finally:
      - send: QUIT
        expect: 221
"""


def reply(text: bytes) -> Reply:
    code, _, line = text.decode().rstrip("\r\n").partition(" ")
    return Reply(int(code), (line,), text)


def smuggle_step(result):
    return next(s for s in result.steps if s.action == "smuggle")


# --- what the replies mean (no I/O) ------------------------------------------------------------------------------

OK, MAIL_OK, REFUSAL = reply(b"250 2.0.0 queued\r\n"), reply(b"250 2.1.0 Ok\r\n"), reply(b"500 5.5.1 bare LF\r\n")


@pytest.mark.parametrize(("heard", "closed", "word", "detail"), [
    ([Heard(OK, early=False)], False, NOT_VULNERABLE, "the whole text was taken as one message (250 2.0.0 queued)"),
    ([Heard(OK, early=True), Heard(MAIL_OK, early=True)], False, VULNERABLE,
     "the server answered the smuggled MAIL FROM (250 2.1.0 Ok): it took <LF>.<LF> as the end of the data "
     "(250 2.0.0 queued)"),
    ([Heard(OK, early=True), Heard(REFUSAL, early=True)], True, VULNERABLE,
     "the server took <LF>.<LF> as the end of the data (250 2.0.0 queued before the real end of data); "
     "to the smuggled MAIL FROM: 500 5.5.1 bare LF"),
    ([Heard(OK, early=True)], True, VULNERABLE,
     "the server took <LF>.<LF> as the end of the data (250 2.0.0 queued before the real end of data); "
     "to the smuggled MAIL FROM: closed the connection"),
    ([Heard(REFUSAL, early=True)], True, REFUSED, "the server answered 500 5.5.1 bare LF before the real end of data"),
    ([Heard(REFUSAL, early=False)], False, REFUSED, "the server answered 500 5.5.1 bare LF"),
    ([], True, REFUSED, "the server closed the connection without a reply"),
])
def test_the_verdict_reads_the_replies_in_order(heard, closed, word, detail):
    found = verdict("\n.\n", heard, closed)
    assert (found.word, found.detail) == (word, detail)
    assert found.text == f"{word}: {detail}"


def test_no_reply_and_still_open_is_no_verdict():
    assert verdict("\n.\n", [], closed=False) is None


def test_endings_are_named_as_the_advisories_write_them():
    assert ending_name("\r\n\x00.\r\n") == "<CR><LF><NUL>.<CR><LF>"
    assert ending_name("\r\n.\r\r\n") == "<CR><LF>.<CR><CR><LF>"


# --- the step against a scripted server ---------------------------------------------------------------------------

def test_a_server_that_answers_the_smuggled_mail_from_fails_the_case_as_vulnerable():
    server = ScriptedServer([*ENVELOPE, Expect(FIRST), Say(b"250 2.0.0 Ok: queued as A1\r\n"),
                             Expect(MAIL), Say(b"250 2.1.0 Ok\r\n"), Expect(RCPT), Say(b"250 2.1.5 Ok\r\n"),
                             Expect(DATA), Say(b"354 go ahead\r\n"),
                             Expect(LAST), Say(b"250 2.0.0 Ok: queued as B2\r\n"), *QUIT])
    result = run(plan_of(SMUGGLE), server)
    server.assert_done()
    step = smuggle_step(result)
    assert result.status == FAILED and step.status == FAILED
    assert step.reason == step.verdict == (
        "vulnerable: the server answered the smuggled MAIL FROM (250 2.1.0 Ok): it took <LF>.<LF> as the end of "
        "the data (250 2.0.0 Ok: queued as A1)")
    assert step.reply.code == 250 and step.reply.lines == ("2.1.0 Ok",)
    assert result.reason.startswith("step 6 (") and result.reason.endswith(step.verdict)
    assert server.connections[0].writes[-6:-1] == [FIRST, MAIL, RCPT, DATA, LAST]  # five writes, then QUIT
    assert result.steps[-1].status == PASSED  # finally: QUIT met its 221: every reply was read
    assert json.loads(json.dumps(result.to_dict()))["steps"][5]["verdict"] == step.verdict


def test_one_reply_after_the_real_end_is_not_vulnerable_and_says_so():
    server = ScriptedServer([*ENVELOPE, Expect(until=b"\r\n.\r\n"), Say(b"250 OK id=1\r\n"), *QUIT])
    started = time.monotonic()
    result = run(plan_of(SMUGGLE), server)
    server.assert_done()
    step = smuggle_step(result)
    assert result.status == PASSED, result.reason
    assert step.verdict == "not vulnerable: the whole text was taken as one message (250 OK id=1)"
    assert server.connections[0].writes[-6:-1] == [FIRST, MAIL, RCPT, DATA, LAST]
    assert time.monotonic() - started >= 5 * 0.05  # four pauses between the pieces, one after them
    out = io.StringIO()
    Console(out=out, colour=False).case_done(make_run([result]).plans[0], result)
    assert f"        verdict: {step.verdict}\n" in out.getvalue()


def test_a_refusal_that_closes_passes_as_refused_not_as_safe():
    server = ScriptedServer([*ENVELOPE, Expect(FIRST), Say(b"500 5.5.1 Invalid command: Pipelining not supported\r\n"),
                             Close()])
    result = run(plan_of(SMUGGLE), server)
    step = smuggle_step(result)
    assert result.status == PASSED, result.reason
    assert step.verdict == ("refused: the server answered 500 5.5.1 Invalid command: Pipelining not supported "
                            "before the real end of data")
    assert server.connections[0].writes[-1] == FIRST  # nothing more was sent after the close
    assert result.steps[-1].status == SKIPPED and result.steps[-1].reason == "not run: the connection is closed"


def test_a_server_that_only_closes_is_refused():
    server = ScriptedServer([*ENVELOPE, Expect(FIRST), Close()])
    step = smuggle_step(run(plan_of(SMUGGLE), server))
    assert step.status == PASSED and step.verdict == "refused: the server closed the connection without a reply"


def test_no_reply_at_all_fails_on_the_step_timeout():
    server = ScriptedServer([*ENVELOPE, body()])
    result = run(plan_of(SMUGGLE.replace("admin@client.test}", "admin@client.test}\n        timeout: 0.6")), server)
    step = smuggle_step(result)
    assert step.status == FAILED and step.reason == "timed out waiting for a reply to the end of data"
    assert step.verdict is None


def test_pauses_that_cannot_fit_in_the_timeout_fail_before_anything_is_sent():
    server = ScriptedServer([*ENVELOPE])
    result = run(plan_of(SMUGGLE.replace("pause: 0.05", "pause: 1")), server)
    step = smuggle_step(result)
    assert step.status == FAILED
    assert step.reason.startswith("smuggle: its pauses (5s in all) do not fit in the step's timeout (")
    assert step.reason.endswith("s left): raise timeout: or shorten the pauses")
    assert not [e for e in result.transcript if e.direction == SEND and e.data.startswith(b"Subject")]


def test_the_html_report_shows_the_verdict(tmp_path):
    server = ScriptedServer([*ENVELOPE, Expect(until=b"\r\n.\r\n"), Say(b"250 OK id=1\r\n"), *QUIT])
    result = run(plan_of(SMUGGLE), server)
    page = write_html_reports(make_run([result]), tmp_path)[0].read_text("utf-8")
    verdict_html = "not vulnerable: the whole text was taken as one message (250 OK id=1)"
    assert f'<span class="why info">{verdict_html}</span>' in page  # the case's header line
    assert f'<div class="finding">{verdict_html}</div>' in page  # the step's row


# --- raw: in pieces -----------------------------------------------------------------------------------------------

RAW = """\
steps:
  - expect: 220
  - raw: ["MAIL FROM:<a@client.test>\\r\\n", {pause: 0.2}, "RCPT TO:<b@peer.test>\\r\\n"]
  - expect: 250
  - expect: 250
"""


def test_a_raw_list_writes_each_piece_on_its_own_with_the_pause_between():
    server = ScriptedServer([BANNER, Expect(b"MAIL FROM:<a@client.test>\r\n"), Say(b"250 2.1.0 Ok\r\n"),
                             Expect(b"RCPT TO:<b@peer.test>\r\n"), Say(b"250 2.1.5 Ok\r\n")])
    started = time.monotonic()
    result = run(plan_of(RAW), server)
    assert result.status == PASSED, result.reason
    assert server.connections[0].writes == [b"MAIL FROM:<a@client.test>\r\n", b"RCPT TO:<b@peer.test>\r\n"]
    assert time.monotonic() - started >= 0.2
    assert result.steps[1].label == "MAIL FROM:<a@client.test>\\r\\n [pause 0.2s] RCPT TO:<b@peer.test>\\r\\n"


def test_raw_pauses_are_bounded_by_the_step_timeout():
    text = RAW.replace("{pause: 0.2}", "{pause: 2}, {pause: 1}").replace('\\r\\n"]', '\\r\\n"]\n    timeout: 2.5')
    result = run(plan_of(text), ScriptedServer([BANNER]))
    assert result.steps[1].status == FAILED
    assert result.steps[1].reason.startswith("raw: its pauses (3s in all) do not fit in the step's timeout (2.")


# --- -v shows line ends that are not CRLF -------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "shown"), [
    (b"EHLO client.test\r\n", ["EHLO client.test"]),
    (b"first\n.\nMAIL FROM:<a@b>\r\n", ["first\\n", ".\\n", "MAIL FROM:<a@b>"]),
    (b"first\r.\rMAIL\r\n", ["first\\r.\\rMAIL"]),
    (b"first\r\n\x00.\r\n", ["first", "\\x00."]),
    (b"no line end", ["no line end"]),
])
def test_verbose_output_shows_bare_line_ends(data, shown):
    out = io.StringIO()
    Console(out=out, colour=False).live("case", SEND, data)
    assert out.getvalue().splitlines() == [f"  C: {line}" for line in shown]


# --- the plan is checked before anything is sent -----------------------------------------------------------------

def test_smuggle_takes_no_expectation(tmp_path: Path) -> None:
    text = 'vars: {sender: a@b.test, rcpt: c@d.test}\nsteps:\n  - smuggle: {ending: "\\n.\\n"}\n    expect: 250\n'
    assert only_problem(tmp_path, text) == ("3:5", "'smuggle' judges its own replies: 'expect' cannot be given with it")


def test_the_real_end_of_data_is_not_a_smuggling_test(tmp_path: Path) -> None:
    text = 'vars: {sender: a@b.test, rcpt: c@d.test}\nsteps:\n  - smuggle: {ending: "\\r\\n.\\r\\n"}\n'
    where, message = only_problem(tmp_path, text)
    assert where.startswith("3:")
    assert message == ("smuggle: ending is the real end of data <CR><LF>.<CR><LF> (RFC 5321 §4.1.1.4): nothing would "
                       "be smuggled")


def test_smuggle_without_a_sender_names_what_is_missing(tmp_path: Path) -> None:
    text = 'vars: {rcpt: c@d.test}\nsteps:\n  - smuggle: {ending: "\\n.\\n"}\n'
    assert only_problem(tmp_path, text) == (
        "3:14", "smuggle: no sender given, and no variable 'sender' to take it from")
    path = tmp_path / "ok.yaml"
    path.write_text(text.replace('"\\n.\\n"}', '"\\n.\\n", sender: x@y.test}'))
    assert read_plan(path).cases[0].steps[0].value == Smuggle(ending="\n.\n", sender="x@y.test", rcpt="{{ rcpt }}",
                                                              pause=0.5)


def test_a_pause_must_be_a_positive_number(tmp_path: Path) -> None:
    where, message = only_problem(tmp_path, 'steps:\n  - raw: ["a", {pause: 0}, "b"]\n')
    assert where.startswith("2:") and "pause" in message and "0" in message


def test_a_raw_list_of_only_pauses_is_refused(tmp_path: Path) -> None:
    assert only_problem(tmp_path, 'steps:\n  - raw: [{pause: 1}]\n') == (
        "2:10", "raw: the list has only pauses, nothing to send")
