"""The SMTP wire format without sockets: replies parsed from bytes in any split, bodies and commands encoded."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.errors import ProtocolError
from runner.redact import Redactor
from runner.smtp.protocol import (
    MAX_REPLY_LINE,
    DataEncoder,
    Reply,
    ReplyParser,
    as_received,
    encode_body,
    encode_line,
)
from runner.text import excerpt

EHLO = (
    b"250-mx.example.test Hello client.test\r\n"
    b"250-SIZE 35882577\r\n"
    b"250-8BITMIME\r\n"
    b"250-auth PLAIN LOGIN\r\n"
    b"250 STARTTLS\r\n"
)


def drain(parser: ReplyParser) -> list[Reply]:
    out = []
    while (reply := parser.next_reply()) is not None:
        out.append(reply)
    return out


def parse(data: bytes, **limits: int) -> list[Reply]:
    parser = ReplyParser(**limits)
    parser.feed(data)
    return drain(parser)


def outcome(chunks: list[bytes], **limits: int) -> tuple[list[Reply], str | None, bytes | None]:
    """Replies, then the error message (or None) and the bytes still pending (None after an error)."""
    parser = ReplyParser(**limits)
    replies: list[Reply] = []
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while (reply := parser.next_reply()) is not None:
                replies.append(reply)
    except ProtocolError as exc:
        return replies, str(exc), None
    return replies, None, parser.pending


# --- replies that parse ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("data", "code", "lines"),
    [
        (b"220 mx.example.test ESMTP\r\n", 220, ("mx.example.test ESMTP",)),
        (b"250-a\r\n250 b\r\n", 250, ("a", "b")),
        (b"250\r\n", 250, ("",)),  # RFC 5321 §4.2: the text is optional
        (b"250-\r\n250 last\r\n", 250, ("", "last")),
        (b"250 \r\n", 250, ("",)),
        (b"554 5.7.1 caf\xc3\xa9 refus\xc3\xa9\r\n", 554, ("5.7.1 café refusé",)),  # RFC 6531 UTF-8 text
        (EHLO, 250, ("mx.example.test Hello client.test", "SIZE 35882577", "8BITMIME", "auth PLAIN LOGIN", "STARTTLS")),
    ],
    ids=["single", "multiline", "bare-code", "empty-continuation", "code-space", "utf8", "ehlo"],
)
def test_reply_parses(data: bytes, code: int, lines: tuple[str, ...]) -> None:
    assert parse(data) == [Reply(code, lines, data)]


def test_incomplete_reply_needs_more_bytes() -> None:
    for partial in (b"", b"25", b"250-a\r\n", b"250-a\r\n250 b", b"250-a\r\n250 b\r"):
        parser = ReplyParser()
        parser.feed(partial)
        assert parser.next_reply() is None
        assert parser.pending == partial


def test_several_replies_in_one_feed() -> None:
    data = b"220 hi\r\n" + EHLO + b"221 2.0.0 Bye\r\n" + b"250 part"
    parser = ReplyParser()
    parser.feed(data)
    replies = drain(parser)
    assert [r.code for r in replies] == [220, 250, 221]
    assert replies[0].lines == ("hi",)
    assert replies[1].raw == EHLO
    assert replies[2].text == "2.0.0 Bye"
    assert parser.pending == b"250 part"


@pytest.mark.parametrize("data", [b"250 ok\r\n", EHLO, b"250\r\n"], ids=["single", "ehlo", "bare-code"])
def test_reply_split_at_every_byte_boundary_parses_the_same(data: bytes) -> None:
    (whole,) = parse(data)
    for cut in range(len(data) + 1):
        parser = ReplyParser()
        parser.feed(data[:cut])
        first = drain(parser)
        parser.feed(data[cut:])
        assert first + drain(parser) == [whole], f"split at byte {cut}"


def test_reply_fed_one_byte_at_a_time() -> None:
    data = b"220 hi\r\n" + EHLO
    assert outcome([data[i : i + 1] for i in range(len(data))])[0] == parse(data)


# --- 8-bit text: outside RFC 5321 §4.2, sent by servers all the same ----------------------------------------------

def test_text_that_is_not_utf8_is_read_as_latin1_and_the_reply_marked() -> None:
    data = b"220-serveur de messagerie pr\xeat\r\n220 caf\xc3\xa9\r\n"
    assert parse(data) == [Reply(220, ("serveur de messagerie prêt", "café"), data, eight_bit=True)]
    assert not parse(b"220 caf\xc3\xa9\r\n")[0].eight_bit  # UTF-8 (RFC 6531) is not a deviation


def test_strict_parser_refuses_text_that_is_not_utf8() -> None:
    parser = ReplyParser(strict=True)
    parser.feed(b"250 caf\xe9\r\n")
    with pytest.raises(ProtocolError, match=r"^reply line is not valid UTF-8 at byte 7$"):
        parser.next_reply()


@pytest.mark.parametrize(("data", "message"), [
    (b"220 pr\xeat\x1b[2J\r\n", "reply line contains control character 0x1b at offset 8"),
    (b"220 pr\xeat\x00\r\n", "reply line contains a NUL byte at offset 8"),
    (b"220 pr\xeat\x7f\r\n", "reply line contains control character 0x7f at offset 8"),
])
def test_control_bytes_in_8bit_text_are_still_refused(data: bytes, message: str) -> None:
    assert outcome([data])[1] == message


# --- replies that are refused ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"250 ok\n", "reply line ends with a bare LF, not CRLF (RFC 5321 §2.3.8)"),
        (b"250 o\rk\r\n", "reply line contains a bare CR (RFC 5321 §2.3.8)"),
        (b"250 o\x00k\r\n", "reply line contains a NUL byte at offset 5"),
        (b"250-a\r\n251 b\r\n", "reply code changed from 250 to 251 inside a multiline reply"),
        (b"hello\r\n", "not an SMTP reply line: 'hello'"),
        (b"\r\n", "not an SMTP reply line: ''"),
        (b"150 ok\r\n", "not an SMTP reply line: '150 ok'"),
        (b"25\r\n", "not an SMTP reply line: '25'"),
        (b"250x\r\n", "reply code not followed by space, '-' or CRLF: '250x'"),
        (b"2500 ok\r\n", "reply code not followed by space, '-' or CRLF: '2500 ok'"),
        (b"5x5 it's a \\ \"q\"\r\n", "not an SMTP reply line: '5x5 it's a \\\\ \"q\"'"),
        (b"250\xe2\x80\xae ko\r\n", "reply code not followed by space, '-' or CRLF: '250\\u202e ko'"),
    ],
    ids=["bare-lf", "bare-cr", "nul", "code-changes", "garbage", "empty-line", "1yz", "short-code",
         "bad-separator", "four-digits", "escapes", "bidi-after-code"],
)
def test_malformed_reply_is_refused(data: bytes, message: str) -> None:
    """The message is smtprun's words; the offending text is kept apart, shown escaped only by excerpt()."""
    parser = ReplyParser()
    parser.feed(data)
    with pytest.raises(ProtocolError) as exc:
        parser.next_reply()
    assert exc.value.describe(excerpt) == message
    assert str(exc.value) == message.split(": '")[0]
    assert exc.value.received.startswith(data.split(b"\n")[0])


@pytest.mark.parametrize("secret", ['Sup3r"S3cret\\PW', "it's-a\tTAB-pw", "p\u00e4ssw\u00f6rd-\u20ac"])
@pytest.mark.parametrize("line", ["{s}", "5x5 {s}", "535{s}", "535\u202e{s}"])
def test_a_secret_in_an_offending_line_is_masked_before_it_is_escaped(secret: str, line: str) -> None:
    redactor = Redactor()
    redactor.add(secret)
    with pytest.raises(ProtocolError) as exc:
        parse(line.format(s=secret).encode() + b"\r\n")
    shown = exc.value.describe(lambda text: excerpt(text, redact=redactor.text))
    assert "***" in shown and secret not in shown and repr(secret)[1:-1] not in shown
    assert "S3cret" not in shown and "TAB" not in shown and "ssw" not in shown


def test_replies_before_a_bad_line_are_still_delivered() -> None:
    parser = ReplyParser()
    parser.feed(b"250 ok\r\nhello\r\n")
    assert parser.next_reply() == Reply(250, ("ok",), b"250 ok\r\n")
    with pytest.raises(ProtocolError, match="not an SMTP reply line") as exc:
        parser.next_reply()
    assert exc.value.excerpt == "hello"


def test_long_garbage_is_shown_shortened() -> None:
    with pytest.raises(ProtocolError) as exc:
        parse(b"x" * 200 + b"\r\n")
    assert exc.value.describe(excerpt) == "not an SMTP reply line: '" + "x" * 60 + "...'"


def test_overlong_line_refused_before_its_line_end_arrives() -> None:
    parser = ReplyParser(max_line=64)
    parser.feed(b"250 " + b"a" * 59)  # 63 bytes: the CR LF that may still come would make 65
    assert parser.next_reply() is None  # ...over the limit only once a 64th byte is not the LF
    parser.feed(b"a")
    with pytest.raises(ProtocolError, match=r"^reply line longer than 64 bytes$") as exc:
        parser.next_reply()
    assert len(exc.value.received) <= 64 + 2  # what is kept for the transcript stays bounded too


def test_overlong_line_refused_with_default_limit() -> None:
    parser = ReplyParser()
    parser.feed(b"250-" + b"a" * MAX_REPLY_LINE)
    with pytest.raises(ProtocolError, match=f"longer than {MAX_REPLY_LINE} bytes"):
        parser.next_reply()


def test_line_of_exactly_max_line_bytes_with_crlf_is_accepted() -> None:
    line = b"250 " + b"a" * 10 + b"\r\n"
    assert [r.lines for r in parse(line, max_line=len(line))] == [("a" * 10,)]


def test_line_one_byte_over_max_line_is_refused() -> None:
    line = b"250 " + b"a" * 11 + b"\r\n"  # 17 bytes, limit 16
    with pytest.raises(ProtocolError, match="longer than 16 bytes"):
        parse(line, max_line=16)


def test_too_many_lines_refused() -> None:
    with pytest.raises(ProtocolError, match=r"^multiline reply longer than 3 lines$"):
        parse(b"250-a\r\n" * 3 + b"250 b\r\n", max_lines=3)
    assert len(parse(b"250-a\r\n" * 2 + b"250 b\r\n", max_lines=3)[0].lines) == 3


def test_too_many_bytes_refused() -> None:
    with pytest.raises(ProtocolError, match=r"^reply longer than 40 bytes$"):
        parse(b"250-aaaaaaaa\r\n" * 3, max_bytes=40)  # 42 bytes, no final line yet
    at_limit = b"250-aaaaaaaa\r\n250 aaaaaaaaa\r\n"
    assert parse(at_limit, max_bytes=len(at_limit))[0].lines == ("aaaaaaaa", "aaaaaaaaa")


def test_byte_limit_is_per_reply() -> None:
    data = b"250 aaaaaaaa\r\n" * 10  # 14 bytes each, 140 in all
    assert len(parse(data, max_bytes=20)) == 10


def test_parser_stays_broken_after_an_error() -> None:
    parser = ReplyParser()
    parser.feed(b"250 ok\n")
    with pytest.raises(ProtocolError) as first:
        parser.next_reply()
    parser.feed(b"250 fine\r\n")
    for _ in range(2):
        with pytest.raises(ProtocolError) as again:
            parser.next_reply()
        assert again.value is first.value


# --- what a reply says -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("data", "enhanced"),
    [
        (b"250 2.1.5 Ok\r\n", "2.1.5"),
        (b"550 5.07.001 Denied\r\n", "5.7.1"),
        (b"451 4.3.0\r\n", "4.3.0"),
        (b"250-2.0.0 first\r\n250 2.1.0 second\r\n", "2.0.0"),
        (b"250 Ok\r\n", None),
        (b"250\r\n", None),
        (b"250 2.1.5ok\r\n", None),
        (b"250 3.1.5 Ok\r\n", None),  # RFC 3463 §3.1: class is 2, 4 or 5
        (b"250 2.1.5000 Ok\r\n", None),  # RFC 3463 §3.1: at most three digits
    ],
)
def test_enhanced_status_code(data: bytes, enhanced: str | None) -> None:
    assert parse(data)[0].enhanced == enhanced


def test_ehlo_keywords() -> None:
    (reply,) = parse(EHLO)
    assert reply.keywords() == {"SIZE": "35882577", "8BITMIME": "", "AUTH": "PLAIN LOGIN", "STARTTLS": ""}


def test_single_line_reply_has_no_keywords() -> None:
    assert parse(b"250 mx.example.test\r\n")[0].keywords() == {}


@pytest.mark.parametrize(
    ("data", "summary"),
    [
        (b"250 2.1.5 Ok\r\n", "250 2.1.5 Ok"),
        (b"250\r\n", "250"),
        (b"250-a\r\n250 b\r\n", "250 a (+1 more lines)"),
        (EHLO, "250 mx.example.test Hello client.test (+4 more lines)"),
    ],
)
def test_reply_summary(data: bytes, summary: str) -> None:
    assert parse(data)[0].summary() == summary


def test_reply_text_joins_all_lines() -> None:
    assert parse(b"550-5.1.1 no such user\r\n550 5.1.1 try another\r\n")[0].text == (
        "5.1.1 no such user\n5.1.1 try another"
    )


# --- any bytes, any split ----------------------------------------------------------------------------------------

PIECES = [b"250", b"251", b"220", b"554", b"2", b"25", b"-", b" ", b"x", b"ok", b"2.1.5", b"\r\n", b"\r", b"\n",
          b"\x00", b"\xff", b"\xc3\xa9", b"\xc3"]
wire = st.one_of(st.binary(max_size=80), st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join))


@st.composite
def wire_and_cuts(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    data = draw(wire)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    bounds = [0, *cuts, len(data)]
    return data, [data[a:b] for a, b in pairwise(bounds)]


@settings(max_examples=500)
@given(wire_and_cuts())
def test_any_bytes_in_any_split_parse_the_same(case: tuple[bytes, list[bytes]]) -> None:
    data, chunks = case
    limits = {"max_line": 24, "max_lines": 4, "max_bytes": 60}
    whole = outcome([data], **limits)  # anything but ProtocolError escapes and fails the test
    assert outcome(chunks, **limits) == whole
    replies, error, pending = whole
    assert b"".join(r.raw for r in replies) + (pending or b"") == data or error is not None


# --- DATA body encoding ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("body", "wire_form"),
    [
        (b"", b".\r\n"),
        (b"hello\n", b"hello\r\n.\r\n"),
        (b"hello\r\n", b"hello\r\n.\r\n"),
        (b"hello", b"hello\r\n.\r\n"),
        (b"a\nb\r\nc", b"a\r\nb\r\nc\r\n.\r\n"),
        (b".\n", b"..\r\n.\r\n"),
        (b"..x\n", b"...x\r\n.\r\n"),
        (b".x\n", b"..x\r\n.\r\n"),
        (b"a\n.\nb\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\n.\r\nMAIL FROM:<x@example.test>\r\n", b"a\r\n..\r\nMAIL FROM:<x@example.test>\r\n.\r\n"),
        (b"x.\n", b"x.\r\n.\r\n"),
        (b"\n\n", b"\r\n\r\n.\r\n"),
        ("café\n".encode(), "café\r\n.\r\n".encode()),
    ],
    ids=["empty", "lf", "crlf", "no-final-newline", "mixed-ends", "dot-line", "two-dots", "dot-x", "dot-inside",
         "terminator-inside", "dot-not-first", "blank-lines", "utf8"],
)
def test_body_encoding(body: bytes, wire_form: bytes) -> None:
    assert encode_body(body) == wire_form


def test_dot_at_chunk_start_is_stuffed_when_previous_chunk_ended_a_line() -> None:
    enc = DataEncoder()
    assert enc.encode(b"a\r") + enc.encode(b"\n") + enc.encode(b".b\n") + enc.end() == b"a\r\n..b\r\n.\r\n"


def unstuff(stream: bytes) -> bytes:
    """What a server stores: terminator removed, CRLF -> LF, one leading dot dropped from each line."""
    assert stream.endswith(b".\r\n")
    body = stream[:-3]
    if not body:
        return b""
    assert body.endswith(b"\r\n")
    lines = body[:-2].split(b"\r\n")
    return b"\n".join(line[1:] if line.startswith(b".") else line for line in lines) + b"\n"


bodies = st.lists(st.sampled_from([b"a", b".", b"\n", b"\r\n", b" ", b"\xc3\xa9"]), max_size=30).map(b"".join)


@st.composite
def body_and_chunks(draw: st.DrawFn, body_strategy: st.SearchStrategy[bytes]) -> tuple[bytes, list[bytes]]:
    body = draw(body_strategy)
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=8)))
    bounds = [0, *cuts, len(body)]
    return body, [body[a:b] for a, b in pairwise(bounds)]


@given(body_and_chunks(st.one_of(bodies, st.binary(max_size=60))))
def test_body_encoded_in_chunks_equals_encoded_whole(case: tuple[bytes, list[bytes]]) -> None:
    body, chunks = case
    enc = DataEncoder()
    assert b"".join(enc.encode(c) for c in chunks) + enc.end() == encode_body(body)


@given(bodies)
def test_unstuffed_body_is_the_lf_normalised_input(body: bytes) -> None:
    stream = encode_body(body)
    expected = body.replace(b"\r\n", b"\n")
    if expected and not expected.endswith(b"\n"):
        expected += b"\n"
    assert unstuff(stream) == expected
    assert b"\r\n.\r\n" not in stream[:-3] and not stream[:-3].startswith(b".\r\n")  # no early end of DATA


@given(st.one_of(bodies, st.binary(max_size=60)))
def test_a_body_as_received_is_what_the_server_gets_and_is_sent_the_same(body: bytes) -> None:
    """A DKIM signature is made over as_received(body): it must be exactly the message the server gets."""
    received = as_received(body)
    assert encode_body(received) == encode_body(body)
    assert unstuff(encode_body(body)).replace(b"\n", b"\r\n") == received
    assert b"\r" not in received.replace(b"\r\n", b"") and (not received or received.endswith(b"\r\n"))


def test_bare_cr_is_handled_the_same_at_the_end_as_inside() -> None:
    inside, at_end = encode_body(b"x\ry"), encode_body(b"x\r")
    assert (inside, at_end) in {
        (b"x\ry\r\n.\r\n", b"x\r\r\n.\r\n"),  # a bare CR is data wherever it stands
        (b"x\r\ny\r\n.\r\n", b"x\r\n.\r\n"),  # a bare CR is a line end wherever it stands
    }


# --- command lines -----------------------------------------------------------------------------------------------

def test_command_line_gets_crlf() -> None:
    assert encode_line("EHLO client.test") == b"EHLO client.test\r\n"


def test_command_line_is_sent_as_utf8() -> None:
    assert encode_line("MAIL FROM:<δοκιμή@παράδειγμα.δοκιμή> SMTPUTF8") == (
        "MAIL FROM:<δοκιμή@παράδειγμα.δοκιμή> SMTPUTF8".encode() + b"\r\n"
    )


@pytest.mark.parametrize("line", ["EHLO a\r\nMAIL FROM:<>", "EHLO a\n", "EHLO a\r", "\n"])
def test_command_line_with_cr_or_lf_is_refused(line: str) -> None:
    with pytest.raises(ValueError, match="contains CR or LF"):
        encode_line(line)


def test_c1_control_characters_in_a_reply_are_refused() -> None:
    parser = ReplyParser()
    parser.feed("250 ok\u0085then\r\n".encode())
    with pytest.raises(ProtocolError, match="control character 0x85"):
        parser.next_reply()


def test_bidirectional_controls_are_shown_escaped() -> None:
    from runner.results import show_bytes

    assert show_bytes("250 \u202eko 052".encode()) == "250 \\u202eko 052"


def test_ehlo_keywords_written_with_an_equals_sign_are_keywords_with_parameters() -> None:
    """Courier's EHLO (and the pre-RFC 4954 AUTH= line many servers still add for old clients)."""
    reply = parse(b"250-mail.smtprun.test Ok.\r\n250-XVERP=Courier\r\n250-AUTH LOGIN PLAIN\r\n"
                  b"250-AUTH=LOGIN PLAIN CRAM-MD5\r\n250-XSECURITY=NONE,STARTTLS\r\n250 PIPELINING\r\n")[0]
    assert reply.keywords() == {"XVERP": "Courier", "AUTH": "LOGIN PLAIN", "XSECURITY": "NONE,STARTTLS",
                                "PIPELINING": ""}
    assert parse(b"250-x\r\n250 AUTH=LOGIN\r\n")[0].keywords() == {"AUTH": "LOGIN"}
