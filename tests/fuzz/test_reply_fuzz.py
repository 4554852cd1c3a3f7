"""Property tests of ReplyParser over hostile byte streams: 8-bit, NUL, CR/LF mixes, odd codes, huge lines.

tests/unit/test_protocol.py checks that short streams parse the same in any split. Here the streams are
shaped like replies gone wrong, as long as the limits and past them, and every outcome is also checked
against an independent reading of RFC 5321 §4.2 (the oracle below): the parser must accept exactly the
replies the grammar allows, and refuse the first line it does not, whatever way the bytes arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from runner.errors import ProtocolError
from runner.smtp.protocol import MAX_REPLY_BYTES, MAX_REPLY_LINE, MAX_REPLY_LINES, Reply, ReplyParser
from tests.fuzz.budget import fuzz_settings

CODES = [b"220", b"250", b"251", b"334", b"354", b"421", b"554", b"200", b"599", b"600", b"199", b"000", b"099",
         b"2x0", b"22", b"2", b"", b"2200", b"   ", b"220 ", b"\xef\xbc\x92\xef\xbc\x92\xef\xbc\x90",  # fullwidth 220
         b"\xd9\xa2\xd9\xa5\xd9\xa0", b"\x00\x00\x00", b"-250", b" 250", b"+OK", b"HTTP/1.1"]
SEPARATORS = [b"", b" ", b"-", b"  ", b"\t", b"x", b"\x00", b"--", b"- ", b"\xc2\xa0"]
TEXTS = [b"", b" ", b"  ", b"ok", b"mx.example.test ESMTP", b"2.1.5 Ok", b"\t", b"\x00", b"a\x00b", b"\x1b[2J",
         b"\x7f", b"\xc2\x85", b"\xc2\x9b", b"\xe2\x80\xae", b"\xe9t\xe9", b"caf\xc3\xa9", b"\xff\xfe", b"\xc3",
         b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xef\xbb\xbf", b"\r", b"a\rb", b"\n", b"PIPELINING", b"AUTH PLAIN",
         b"STARTTLS", b"x" * 60]
ENDS = [b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"\r\r\n", b"\n\r", b"", b"\r\n\r\n", b"\r\x00\n"]


@st.composite
def reply_lines(draw: st.DrawFn) -> bytes:
    code = draw(st.sampled_from(CODES))
    sep = draw(st.sampled_from(SEPARATORS))
    text = b"".join(draw(st.lists(st.one_of(st.sampled_from(TEXTS), st.binary(max_size=6)), max_size=4)))
    return code + sep + text + draw(st.sampled_from(ENDS))


@st.composite
def streams(draw: st.DrawFn, huge: bool = False) -> bytes:
    parts = [draw(st.one_of(reply_lines(), reply_lines(), st.binary(max_size=20))) for _ in range(draw(st.integers(0,
                                                                                                         8)))]
    if huge:  # lines around the default limits, and far past them
        n = draw(st.sampled_from([MAX_REPLY_LINE - 7, MAX_REPLY_LINE - 6, MAX_REPLY_LINE - 5, MAX_REPLY_LINE,
                                  MAX_REPLY_LINE + 1, 100_000, 1_000_000]))
        fill = draw(st.sampled_from([b"x", b"\xc3\xa9", b"\x00", b" ", b"\r"]))
        big = draw(st.sampled_from([b"250 ", b"250-", b""])) + (fill * n)[:n] + draw(st.sampled_from(ENDS))
        parts.insert(draw(st.integers(0, len(parts))), big)
        if draw(st.booleans()):  # a multiline reply up to and past the byte and line limits
            line = b"250-" + b"k" * 250 + b"\r\n"
            parts.insert(draw(st.integers(0, len(parts))), line * draw(st.sampled_from([255, 256, 257, 300])))
    return b"".join(parts)


def cuts(data: bytes) -> st.SearchStrategy[list[bytes]]:
    points = st.lists(st.integers(0, len(data)), max_size=12).map(sorted)
    return points.map(lambda ps: [data[a:b] for a, b in pairwise([0, *ps, len(data)])])


@dataclass(frozen=True)
class Outcome:
    replies: tuple[tuple[int, tuple[str, ...], bytes], ...]
    error: str | None


def run(chunks: list[bytes], **limits: int) -> Outcome:
    """Feed chunk by chunk, draining after each; every call must give a Reply, None or a ProtocolError."""
    parser = ReplyParser(**limits)
    replies: list[Reply] = []
    error: ProtocolError | None = None
    for chunk in chunks:
        parser.feed(chunk)
        while error is None:
            try:
                got = parser.next_reply()  # any other exception fails the test right here
            except ProtocolError as exc:
                error = exc
                break
            if got is None:
                break
            assert isinstance(got, Reply), f"next_reply gave {type(got).__name__}: {got!r}"
            replies.append(got)
        if error is not None:
            break
    if error is not None:  # a broken parser stays broken, with the same error
        parser.feed(b"250 ok\r\n")
        try:
            parser.next_reply()
        except ProtocolError as again:
            assert str(again) == str(error)
        else:
            raise AssertionError("the parser recovered after a ProtocolError")
    for reply in replies:  # what reports and expectations do with a reply must work on every reply
        assert 200 <= reply.code <= 599
        assert reply.raw.endswith(b"\r\n")
        assert reply.lines and all(isinstance(line, str) for line in reply.lines)
        reply.summary(), reply.text, reply.enhanced, reply.keywords()
    return Outcome(tuple((r.code, r.lines, r.raw) for r in replies), None if error is None else str(error))


# --- an independent reading of the grammar ----------------------------------------------------------------------


def _line_ok(line: bytes) -> tuple[int, str, str] | None:
    """(code, separator, text) of a valid reply line (CRLF included), else None."""
    if not line.endswith(b"\r\n") or b"\r" in line[:-2] or b"\n" in line[:-2] or b"\x00" in line:
        return None
    try:
        text, c1_refused = line[:-2].decode("utf-8"), True
    except UnicodeDecodeError:  # 8-bit text: read as Latin-1 (RFC 5321 §4.2 deviation, a warning), its bytes kept
        text, c1_refused = line[:-2].decode("latin-1"), False
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F or (c1_refused and 0x80 <= ord(c) <= 0x9F)
           for c in text):
        return None
    code, sep, rest = text[:3], text[3:4], text[4:]
    if len(code) != 3 or code[0] not in "2345" or not all(c in "0123456789" for c in code):
        return None
    if sep not in ("", " ", "-"):
        return None
    return int(code), sep, rest


def oracle(data: bytes, max_line: int, max_lines: int, max_bytes: int) -> tuple[tuple, bool]:
    """(the replies the grammar gives, whether the stream breaks it before its end)."""
    replies, lines, raw, code, pos = [], [], b"", None, 0
    while True:
        end = data.find(b"\n", pos)
        if end < 0 or end + 1 - pos > max_line:
            return tuple(replies), len(data) - pos >= max_line  # a partial line too long to be one
        line, pos = data[pos: end + 1], end + 1
        raw += line
        parsed = _line_ok(line)
        if len(raw) > max_bytes or parsed is None or (code is not None and parsed[0] != code):
            return tuple(replies), True
        code = parsed[0]
        lines.append(parsed[2])
        if len(lines) > max_lines:
            return tuple(replies), True
        if parsed[1] != "-":
            replies.append((code, tuple(lines), raw))
            lines, raw, code = [], b"", None


LIMITS = st.sampled_from([{"max_line": 16, "max_lines": 3, "max_bytes": 40},
                          {"max_line": 64, "max_lines": 8, "max_bytes": 200},
                          {"max_line": MAX_REPLY_LINE, "max_lines": MAX_REPLY_LINES, "max_bytes": MAX_REPLY_BYTES}])


@fuzz_settings(ci=400, long=10000)
@given(st.data())
def test_any_split_gives_the_same_replies_or_the_same_error(data: st.DataObject) -> None:
    stream = data.draw(streams())
    limits = data.draw(LIMITS)
    whole = run([stream], **limits)
    assert run(data.draw(cuts(stream)), **limits) == whole
    assert run(data.draw(cuts(stream)), **limits) == whole
    if len(stream) <= 400:
        assert run([bytes([b]) for b in stream], **limits) == whole


@fuzz_settings(ci=400, long=10000)
@given(st.data())
def test_the_parser_accepts_exactly_what_the_grammar_allows(data: st.DataObject) -> None:
    stream = data.draw(streams())
    limits = data.draw(LIMITS)
    got = run(data.draw(cuts(stream)), **limits)
    expected, broken = oracle(stream, **limits)
    assert got.replies == expected, f"stream {stream!r}"
    assert (got.error is not None) == broken, f"stream {stream!r}: error {got.error!r}, grammar says broken={broken}"


@fuzz_settings(ci=40, long=1000)
@given(st.data())
def test_huge_lines_and_replies_are_refused_the_same_in_any_split(data: st.DataObject) -> None:
    stream = data.draw(streams(huge=True))
    whole = run([stream])
    assert run(data.draw(cuts(stream))) == whole
    expected, broken = oracle(stream, MAX_REPLY_LINE, MAX_REPLY_LINES, MAX_REPLY_BYTES)
    assert whole.replies == expected
    assert (whole.error is not None) == broken


@fuzz_settings(ci=200, long=10000)
@given(stream=st.binary(max_size=300), chunk=st.integers(1, 7))
def test_arbitrary_bytes_in_fixed_chunks(stream: bytes, chunk: int) -> None:
    pieces = [stream[i: i + chunk] for i in range(0, len(stream), chunk)]
    assert run(pieces) == run([stream])
    expected, _ = oracle(stream, MAX_REPLY_LINE, MAX_REPLY_LINES, MAX_REPLY_BYTES)
    assert run([stream]).replies == expected


def test_a_code_followed_by_spaces_only_is_a_reply_whose_text_is_blank() -> None:
    """`220  ` (the code, its space, one more space) is valid: the text is " ". Consumers must cope (finding 2)."""
    out = run([b"220  \r\n"])
    assert out.replies == ((220, (" ",), b"220  \r\n"),)
    assert out.error is None
