"""XCLIENT and XFORWARD (Postfix's XCLIENT_README, XFORWARD_README): the command lines, values xtext-encoded,
attributes a verb does not take refused, and a 220 to XCLIENT voiding the EHLO keywords in the sans-IO session."""

from __future__ import annotations

import pytest

from runner.smtp.session import SmtpSession
from runner.smtp.xclient import command_line
from tests.support.validation import only_problem


@pytest.mark.parametrize(("verb", "attributes", "line"), [
    ("XCLIENT", {"NAME": "client.example.org", "ADDR": "198.51.100.7"},
     "XCLIENT NAME=client.example.org ADDR=198.51.100.7"),
    ("XCLIENT", {"ADDR": "IPV6:2001:db8::7", "NAME": "[UNAVAILABLE]"},
     "XCLIENT ADDR=IPV6:2001:db8::7 NAME=[UNAVAILABLE]"),
    ("XCLIENT", {"LOGIN": "a+b=c d"}, "XCLIENT LOGIN=a+2Bb+3Dc+20d"),  # RFC 3461 §4
    ("XCLIENT", {"HELO": "é"}, "XCLIENT HELO=+C3+A9"),
    ("XFORWARD", {"IDENT": "4F2A1", "SOURCE": "REMOTE"}, "XFORWARD IDENT=4F2A1 SOURCE=REMOTE"),
])
def test_command_lines(verb, attributes, line):
    assert command_line(verb, attributes) == line


def test_an_attribute_the_verb_does_not_take():
    with pytest.raises(ValueError, match="XFORWARD takes NAME, ADDR, PORT, PROTO, HELO, IDENT, SOURCE, not LOGIN"):
        command_line("XFORWARD", {"LOGIN": "alice"})


def _reply(session: SmtpSession, data: bytes):
    session.sent()
    session.receive(data)
    return session.next_event()


def test_a_220_to_xclient_is_a_new_greeting_and_voids_the_keywords():
    session = SmtpSession()
    session.learn("EHLO proxy.test", _reply(session, b"250-mx.test\r\n250 XCLIENT NAME ADDR\r\n"))
    assert "XCLIENT" in session.keywords
    assert session.learn("XCLIENT NAME=a ADDR=198.51.100.7", _reply(session, b"220 mx.test ESMTP\r\n")) is True
    assert session.keywords == {}


def test_a_refused_xclient_leaves_the_session_as_it_was():
    session = SmtpSession()
    session.learn("EHLO proxy.test", _reply(session, b"250-mx.test\r\n250 SIZE 1000\r\n"))
    assert session.learn("XCLIENT NAME=a", _reply(session, b"550 5.7.0 Error: insufficient authorization\r\n")) \
        is False
    assert session.keywords == {"SIZE": "1000"}


def test_an_unknown_attribute_is_a_plan_error(tmp_path):
    plan = "target: {host: 127.0.0.1}\nsteps:\n  - xclient: {ADDR: 198.51.100.7, IDENT: x}\n    expect: 220\n"
    where, message = only_problem(tmp_path, plan)
    assert where.startswith("3:")
    assert message == "unknown key 'IDENT' in xclient"


def test_xclient_on_an_lmtp_target_is_refused(tmp_path):
    plan = ("target: {unix: /run/lmtp, protocol: lmtp}\nsteps:\n  - send: LHLO x\n    expect: 250\n"
            "  - xclient: {ADDR: 198.51.100.7}\n    expect: 220\n")
    where, message = only_problem(tmp_path, plan)
    assert where.startswith("5:")
    assert message == "xclient: is a Postfix SMTP extension, and target.protocol is lmtp: no LMTP server takes it"
