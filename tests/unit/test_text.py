"""Showing server and plan text safely (runner.text) and reading host:port (runner.net.address)."""

from __future__ import annotations

import argparse

import pytest

from runner.cli import host_port, tcp_port
from runner.net.address import check_port, hostport, parse_hostport, parse_port, split_hostport
from runner.redact import MASK, Redactor
from runner.text import CONTROLS, MARKUP, UNPRINTABLE, printable

# --- escaping ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bidi", ["\u202e", "\u202a", "\u2066", "\u2069", "\u200e", "\u200f", "\u061c"])
@pytest.mark.parametrize("charset", [CONTROLS, MARKUP, UNPRINTABLE])
def test_bidirectional_controls_are_shown_as_escapes(bidi: str, charset) -> None:
    shown = printable(f"250 {bidi}ko 052", charset)
    assert shown == f"250 \\u{ord(bidi):04x}ko 052"  # it cannot make "ko 052" read as "250 ok"


@pytest.mark.parametrize("charset", [CONTROLS, MARKUP])
def test_c0_and_c1_controls_and_del_are_escaped(charset) -> None:
    assert printable("a\x1b[31mb\x7fc\x85d\x9be\x00", charset) == "a\\x1b[31mb\\x7fc\\u0085d\\u009be\\x00"


def test_python_style_writes_c1_controls_as_python_does() -> None:
    assert printable("a\x1b[31mb\x7fc\x85d\x9be\x00", UNPRINTABLE) == "a\\x1b[31mb\\x7fc\\x85d\\x9be\\x00"


def test_a_c1_character_and_an_undecodable_byte_are_told_apart() -> None:
    """U+0085 (bytes C2 85) and a lone byte 85 once both read \x85: a transcript must say which came."""
    assert printable(b"a\xc2\x85b\x85c", CONTROLS, backslash=True) == "a\\u0085b\\x85c"


def test_terminal_and_transcript_escape_line_ends_markup_keeps_tab_and_lf() -> None:
    assert printable("a\tb\r\nc", CONTROLS) == "a\\tb\\r\\nc"
    assert printable("a\tb\r\nc", MARKUP) == "a\tb\\r\nc"
    assert printable("a\tb\r\nc", UNPRINTABLE) == "a\\tb\\r\\nc"


def test_backslash_is_doubled_only_when_asked() -> None:
    assert printable("C:\\x41 \x01", CONTROLS) == "C:\\x41 \\x01"  # ambiguous, but as a person typed it
    assert printable("C:\\x41 \x01", CONTROLS, backslash=True) == "C:\\\\x41 \\x01"
    assert printable("a\\b", UNPRINTABLE, backslash=True) == "a\\\\b"
    assert printable("a\\b", MARKUP) == "a\\b"


def test_bytes_are_read_as_utf8_and_undecodable_bytes_shown_as_bytes() -> None:
    assert printable("grüße ✓".encode(), CONTROLS) == "grüße ✓"
    assert printable(b"250 \xff\xfe ok", CONTROLS) == "250 \\xff\\xfe ok"
    assert printable(b"250 \xff", MARKUP) == "250 \\xff"


def test_non_ascii_text_is_kept_and_only_the_unprintable_escaped() -> None:
    assert printable("Ünïcödé 日本 \U0001f600", MARKUP) == "Ünïcödé 日本 \U0001f600"
    # a YAML comment must not hold what YAML takes for a line break (U+2028) or cannot be seen (NBSP)
    assert printable("a\u2028b\u00a0c\U000e0001", UNPRINTABLE) == "a\\u2028b\\xa0c\\U000e0001"
    assert printable("a\u2028b", MARKUP) == "a\u2028b"


def test_xml_illegal_noncharacters_and_lone_surrogates() -> None:
    assert printable("a\ufffeb\uffff", MARKUP) == "a\\ufffeb\\uffff"
    assert printable("a\ud800b", MARKUP) == "a\\ud800b"
    assert printable("a\udcffb", MARKUP) == "a\\xffb"  # an undecodable byte, as surrogateescape keeps it
    assert printable("a\udcffb", UNPRINTABLE) == "a\\udcffb"  # as Python writes it


def test_nothing_to_show() -> None:
    assert printable(None) == "" and printable("") == "" and printable(b"", CONTROLS) == ""


@pytest.mark.parametrize("secret", ['pa"ss', "it's", "back\\slash", "tab\there", "grüße", "\\\"'\t✓"])
@pytest.mark.parametrize("charset", [CONTROLS, MARKUP, UNPRINTABLE])
def test_secrets_are_masked_before_the_text_is_escaped(secret: str, charset) -> None:
    redactor = Redactor()
    redactor.add(secret)
    line = f"535 5.7.8 rejected {secret} for user"
    for data in (line, line.encode()):
        shown = printable(data, charset, backslash=True, redact=redactor.text)
        assert shown == f"535 5.7.8 rejected {MASK} for user"


def test_masking_after_escaping_would_miss_the_secret() -> None:
    """Why `redact` is applied first: escaped, a secret with a backslash or a tab no longer matches."""
    redactor = Redactor()
    redactor.add("pa\\ss\tword")
    line = "535 pa\\ss\tword"
    assert redactor.text(printable(line, CONTROLS, backslash=True)) == "535 pa\\\\ss\\tword"
    assert printable(line, CONTROLS, backslash=True, redact=redactor.text) == f"535 {MASK}"


# --- host and port ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("mx.example.test", ("mx.example.test", None)),
        ("mx.example.test:2525", ("mx.example.test", 2525)),
        (" 127.0.0.1:25 ", ("127.0.0.1", 25)),
        ("127.0.0.1", ("127.0.0.1", None)),
        ("::1", ("::1", None)),
        ("2001:db8::25", ("2001:db8::25", None)),
        ("[::1]", ("::1", None)),
        ("[::1]:2525", ("::1", 2525)),
        ("[2001:db8::25]:65535", ("2001:db8::25", 65535)),
        ("h:1", ("h", 1)),
    ],
)
def test_parse_hostport(text: str, parsed: tuple[str, int | None]) -> None:
    assert parse_hostport(text) == parsed
    assert host_port(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "an empty host name"),
        ("   ", "an empty host name"),
        ("h:0", "not a TCP port: '0'"),
        ("h:65536", "not a TCP port: '65536'"),
        ("h:smtp", "not a TCP port: 'smtp'"),
        ("h:", "not a TCP port: ''"),
        ("h:-25", "not a TCP port: '-25'"),
        ("h:５３", "not a TCP port: '５３'"),
        ("[::1]:", "not a TCP port: ''"),
        ("[::1]:99999", "not a TCP port: '99999'"),
        ("[]", "expected [IPv6] or [IPv6]:PORT, got '[]'"),
        ("[::1", "expected [IPv6] or [IPv6]:PORT, got '[::1'"),
        ("[::1]25", "expected [IPv6] or [IPv6]:PORT, got '[::1]25'"),
        ("a:b:c", "not a host, HOST:PORT or IPv6 address: 'a:b:c'"),
        (":25", "an empty host name in ':25'"),
    ],
)
def test_parse_hostport_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_hostport(text)
    assert str(caught.value) == message
    with pytest.raises(argparse.ArgumentTypeError, match="^" + message.replace("[", r"\[") + "$"):
        host_port(text)


def test_split_hostport_checks_only_the_brackets() -> None:
    assert split_hostport("[127.0.0.1]:53") == ("127.0.0.1", "53")
    assert split_hostport("h:x") == ("h", "x")
    assert split_hostport("::1:5353:") == ("::1:5353:", None)
    with pytest.raises(ValueError, match="expected"):
        split_hostport("[::1]x")


def test_ports() -> None:
    assert parse_port("25") == 25 and tcp_port("65535") == 65535
    for bad in ("0", "65536", "", "2²", "+5", " 25"):
        with pytest.raises(ValueError, match="not a TCP port"):
            parse_port(bad)
        with pytest.raises(argparse.ArgumentTypeError, match="not a TCP port"):
            tcp_port(bad)
    assert check_port(53) == 53
    for bad in (0, 65536, True, "53", 5.0):
        with pytest.raises(ValueError, match="port must be 1-65535"):
            check_port(bad)


@pytest.mark.parametrize(
    ("host", "port", "text"),
    [("mx.example.test", 25, "mx.example.test:25"), ("127.0.0.1", 2525, "127.0.0.1:2525"),
     ("::1", 25, "[::1]:25"), ("2001:db8::1", "{{ port }}", "[2001:db8::1]:{{ port }}")],
)
def test_hostport_brackets_ipv6_and_reads_back(host: str, port, text: str) -> None:
    assert hostport(host, port) == text
    if isinstance(port, int):
        assert parse_hostport(text) == (host, port)
