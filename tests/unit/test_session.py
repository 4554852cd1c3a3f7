"""runner/smtp/session.py with byte literals: what the client's side of a session makes of what arrives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.errors import ProtocolError
from runner.smtp.protocol import Reply
from runner.smtp.session import NEED_DATA, Closed, Injection, SmtpSession, TimedOut, Unsolicited

BANNER = b"220 mx.example.test ESMTP\r\n"
EHLO = b"250-mx.example.test Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 STARTTLS\r\n"


def events(session: SmtpSession) -> list[Reply]:
    out = []
    while (event := session.next_event()) is not NEED_DATA:
        assert isinstance(event, Reply)
        out.append(event)
    return out


def fed(*chunks: bytes, owed: int | None = None) -> SmtpSession:
    session = SmtpSession()
    for chunk in chunks:
        session.receive(chunk)
    if owed is not None:
        session.owed = owed
    return session


def test_the_banner_is_owed_first():
    session = SmtpSession()
    assert session.owed == 1
    session.receive(BANNER)
    [banner] = events(session)
    assert (banner.code, banner.lines) == (220, ("mx.example.test ESMTP",))
    assert session.owed == 0


@pytest.mark.parametrize(("chunks", "codes"), [
    ([b"220 ok\r\n"], [220]),
    ([b"22", b"0 ok\r", b"\n"], [220]),
    ([b"250-a\r\n", b"250 b\r\n"], [250]),
    ([b"250-a\r\n250 b\r\n354 go\r\n"], [250, 354]),
    ([b"250-a\r\n"], []),
    ([b"250"], []),
    ([b""], []),
])
def test_a_reply_is_complete_at_its_last_line(chunks, codes):
    assert [r.code for r in events(fed(*chunks))] == codes


@pytest.mark.parametrize(("owed", "arrived", "unsolicited"), [
    (0, b"250 surprise\r\n", b"250 surprise\r\n"),
    (0, b"25", b"25"),  # even part of a reply
    (0, b"421 4.3.2 shutting down\r\n", None),  # RFC 5321 §3.8: at any time
    (0, b"", None),
    (1, b"250 the reply owed\r\n", None),
    (None, b"250 one of several to raw:\r\n", None),  # uncountable
])
def test_bytes_no_command_asked_for(owed, arrived, unsolicited):
    result = fed(arrived, owed=owed).unsolicited()
    assert result == (Unsolicited(unsolicited) if unsolicited is not None else None)


def test_pipelined_commands_owe_a_reply_each():
    session = fed(BANNER)
    events(session)
    session.sent(3)
    assert session.owed == 3
    session.receive(b"250 ok\r\n250 ok\r\n")
    assert len(events(session)) == 2 and session.owed == 1
    assert session.unsolicited() is None
    session.receive(b"554 no\r\n")
    events(session)
    assert session.owed == 0


def test_raw_makes_the_count_unknown_for_good():
    session = fed(BANNER)
    events(session)
    session.sent(None)
    session.sent(1)
    assert session.owed is None
    session.receive(b"250 a\r\n250 b\r\n250 c\r\n")
    assert len(events(session)) == 3 and session.owed is None


@pytest.mark.parametrize(("chunks", "outcome"), [
    ([], Closed(b"")),
    ([b"250-half\r\n"], Closed(b"250-half\r\n")),
    ([b"250 done\r\n", b"25"], Closed(b"25")),
])
def test_what_a_close_means(chunks, outcome):
    session = fed(*chunks)
    events(session)
    assert session.closed() == outcome
    assert session.closed().mid_reply == len(outcome.partial)
    assert session.timed_out() == TimedOut(outcome.partial)


def test_a_reply_line_before_the_client_finished_sending():
    assert not fed(b"55").answered_early()
    assert fed(b"552 too big\r\n").answered_early()


KEYWORDS = {"PIPELINING": "", "SIZE": "1000", "STARTTLS": ""}


@pytest.mark.parametrize(("command", "reply", "in_force", "keywords", "hosts"), [
    ("EHLO client.test", EHLO, True, KEYWORDS, ["mx.example.test"]),
    ("ehlo client.test", EHLO, True, KEYWORDS, ["mx.example.test"]),
    ("LHLO client.test", b"250-lmtp.test\r\n250 8BITMIME\r\n", True, {"8BITMIME": ""}, ["lmtp.test"]),
    ("EHLO client.test", b"250 mx.example.test\r\n", True, {}, ["mx.example.test"]),  # no extensions
    ("HELO client.test", b"250 mx.example.test\r\n", False, {}, []),
    ("EHLO client.test", b"502 5.5.1 no EHLO\r\n", False, {}, []),
    ("read a reply", BANNER, False, {}, ["mx.example.test"]),
    ("read a reply", b"220\r\n", False, {}, []),
])
def test_what_a_reply_teaches(command, reply, in_force, keywords, hosts):
    session = fed(reply)
    [parsed] = events(session)
    assert session.learn(command, parsed) is in_force
    assert session.keywords == keywords
    assert session.greeting_hosts == hosts


def test_only_the_first_banner_names_the_host():
    session = fed(BANNER, b"220 second.example.test\r\n")
    first, second = events(session)
    session.learn("read a reply", first)
    session.learn("read a reply", second)
    assert session.greeting_hosts == ["mx.example.test"]


def test_keywords_from_an_earlier_case_are_in_force_until_ehlo():
    session = SmtpSession({"PIPELINING": ""})
    assert session.keywords == {"PIPELINING": ""}
    session.receive(b"250-mx\r\n250 SIZE\r\n")
    [reply] = events(session)
    session.learn("EHLO x", reply)
    assert session.keywords == {"SIZE": ""}


def test_starttls_220_then_nothing_then_a_fresh_parser_and_no_keywords():
    session = fed(EHLO, owed=1)
    [ehlo] = events(session)
    session.learn("EHLO client.test", ehlo)
    session.starttls_sent()
    session.sent(1)
    session.receive(b"220 2.0.0 go ahead\r\n")
    assert [r.code for r in events(session)] == [220]
    assert session.starttls_accepted() is None
    assert session.tls_established() is None
    assert session.tls and session.keywords == {}  # RFC 3207 §4.2: what EHLO said before is void
    session.receive(b"250 mx\r\n")
    assert [r.code for r in events(session)] == [250]


@pytest.mark.parametrize("injected", [b"250 forged\r\n", b"250-half", b"\x00\xff", b"250 a\r\n250 b\r\n"])
@pytest.mark.parametrize("split", [False, True])
def test_bytes_after_the_starttls_220_are_injection(injected, split):
    session = fed(b"220 mx ESMTP\r\n")
    events(session)
    session.starttls_sent()
    session.sent(1)
    for chunk in ([b"220 go ahead\r\n", injected] if split else [b"220 go ahead\r\n" + injected]):
        session.receive(chunk)
        assert [r.code for r in events(session)] in ([220], [])  # nothing past the 220 is a reply
    assert session.starttls_accepted() == Injection(injected, handshake=False)
    assert session.pending == b""  # the parser starts afresh; the injected bytes are not kept
    assert session.next_event() is NEED_DATA


def test_a_refused_starttls_leaves_the_session_in_plaintext():
    session = fed(BANNER)
    events(session)
    session.starttls_sent()
    session.sent(1)
    session.receive(b"454 4.7.0 TLS not available\r\n")
    session.sent(1)
    session.receive(b"250 ok\r\n")
    assert [r.code for r in events(session)] == [454, 250]


def test_bytes_around_the_handshake_are_injection_and_keep_tls_off():
    session = SmtpSession({"AUTH": "PLAIN"})
    assert session.tls_established(b"250 forged\r\n") == Injection(b"250 forged\r\n", handshake=True)
    assert not session.tls and session.keywords == {"AUTH": "PLAIN"}


@pytest.mark.parametrize(("data", "why"), [
    (b"250 ok\n", "bare LF"),
    (b"hello\r\n", "not an SMTP reply line"),
    (b"250-a\r\n354 b\r\n", "reply code changed from 250 to 354"),
    (b"250 \x00\r\n", "NUL"),
])
def test_a_broken_reply_is_a_protocol_error_and_the_session_stays_broken(data, why):
    session = fed(data)
    with pytest.raises(ProtocolError, match=why) as caught:
        session.next_event()
    assert caught.value.received
    with pytest.raises(ProtocolError):
        session.next_event()


# -- properties ------------------------------------------------------------------------------

def _text() -> st.SearchStrategy[str]:
    return st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


replies = st.builds(
    lambda code, texts: b"".join(f"{code}{'-' if i < len(texts) - 1 else ' '}{t}\r\n".encode()
                                 for i, t in enumerate(texts)),
    st.integers(200, 599),
    st.lists(_text(), min_size=1, max_size=4),
)


def _run(chunks: list[bytes]) -> tuple[list[tuple[int, tuple[str, ...], bytes]], bytes]:
    session = SmtpSession()
    got = []
    for chunk in chunks:
        session.receive(chunk)
        got += [(r.code, r.lines, r.raw) for r in events(session)]
    return got, session.pending


@settings(max_examples=200, deadline=None)
@given(st.lists(replies, min_size=1, max_size=6), st.binary(max_size=8).filter(lambda b: b"\n" not in b),
       st.data())
def test_any_split_of_a_stream_gives_the_same_replies(stream, tail, data):
    whole = b"".join(stream) + tail  # and the start of a reply still arriving
    cuts = sorted(data.draw(st.lists(st.integers(0, len(whole)), max_size=10)))
    chunks = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    assert _run(chunks) == _run([whole])
    assert len(_run([whole])[0]) == len(stream)


operations = st.lists(st.one_of(
    st.tuples(st.just("receive"), st.one_of(st.binary(max_size=40), replies)),
    st.tuples(st.just("sent"), st.one_of(st.none(), st.integers(0, 4))),
    st.tuples(st.just("starttls_sent"), st.none()),
    st.tuples(st.just("starttls_accepted"), st.none()),
    st.tuples(st.just("tls_established"), st.binary(max_size=8)),
), max_size=12)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_arbitrary_bytes_give_events_or_a_protocol_error(ops):
    session = SmtpSession()
    typed = (Reply, Unsolicited, Injection, type(None))
    try:
        for name, arg in ops:
            if name == "receive":
                session.receive(arg)
                while (event := session.next_event()) is not NEED_DATA:
                    assert isinstance(event, Reply)
                assert isinstance(session.unsolicited(), typed)
            elif name == "sent":
                session.sent(arg)
            elif name == "tls_established":
                assert isinstance(session.tls_established(arg), typed)
            else:
                assert isinstance(getattr(session, name)(), typed)
    except ProtocolError:
        return
    assert isinstance(session.closed(), Closed) and isinstance(session.timed_out(), TimedOut)


def _judged(session: SmtpSession, command: str, data: bytes) -> None:
    session.sent()
    session.receive(data)
    reply = session.next_event()
    session.learn(command, reply)


@pytest.mark.parametrize(("greeting", "rcpt_replies", "owed"), [
    ("LHLO", (b"250 2.1.5 OK\r\n", b"550 5.1.1 unknown\r\n", b"250 2.1.5 OK\r\n"), 2),  # RFC 2033 §4.2
    ("LHLO", (b"550 5.1.1 unknown\r\n",), 1),
    ("EHLO", (b"250 2.1.5 OK\r\n", b"250 2.1.5 OK\r\n"), 1),  # SMTP: one reply to the end of data
])
def test_the_end_of_data_owes_a_reply_per_accepted_recipient_in_lmtp(greeting, rcpt_replies, owed):
    session = SmtpSession()
    _judged(session, f"{greeting} client.test", b"250-lmtp.test\r\n250 PIPELINING\r\n")
    _judged(session, "MAIL FROM:<a@x>", b"250 2.1.0 OK\r\n")
    for data in rcpt_replies:
        _judged(session, "RCPT TO:<b@x>", data)
    assert session.body_replies() == owed
    _judged(session, "MAIL FROM:<a@x>", b"250 2.1.0 OK\r\n")  # a new transaction counts afresh
    assert session.body_replies() == 1


@pytest.mark.parametrize(("mail", "reply", "utf8"), [
    ("MAIL FROM:<jörg@example.com> SMTPUTF8", b"250 2.1.0 OK\r\n", True),  # RFC 6531 §3.4
    ("mail from:<a@example.com> BODY=8BITMIME smtputf8", b"250 2.1.0 OK\r\n", True),
    ("MAIL FROM:<a@example.com> SMTPUTF8", b"555 5.5.4 SMTPUTF8 not supported\r\n", False),
    ("MAIL FROM:<smtputf8@example.com>", b"250 2.1.0 OK\r\n", False),  # the word in the path is no parameter
])
def test_a_transaction_is_smtputf8_when_its_accepted_mail_says_so(mail, reply, utf8):
    session = SmtpSession()
    _judged(session, "EHLO client.test", b"250-mx.test\r\n250 SMTPUTF8\r\n")
    assert not session.smtputf8
    _judged(session, mail, reply)
    assert session.smtputf8 is utf8
    _judged(session, "RSET", b"250 2.0.0 OK\r\n")  # a new transaction says it afresh
    assert not session.smtputf8
