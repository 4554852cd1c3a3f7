"""Judging a reply against every form of `expect:`, and the words a report uses for each form."""

from __future__ import annotations

from typing import Any

import pytest

from runner.smtp.expect import check, describe
from runner.smtp.protocol import Reply, ReplyParser
from runner.template import render


def reply(data: bytes) -> Reply:
    parser = ReplyParser()
    parser.feed(data)
    parsed = parser.next_reply()
    assert parsed is not None
    return parsed


OK = reply(b"250 2.1.5 Ok\r\n")
DENIED = reply(b"550-5.7.1 Relaying denied\r\n550 5.7.1 see https://mx.example.test/policy\r\n")
GREYLISTED = reply(b"451 4.7.1 Try again later\r\n")
EHLO = reply(b"250-mx.example.test Hello\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 STARTTLS\r\n")
QUEUED = reply(b"250 2.0.0 Ok: queued as 4BvX1\r\n")


@pytest.mark.parametrize(
    ("spec", "passes", "fails"),
    [
        (250, [OK, EHLO], [DENIED, GREYLISTED]),
        ("250", [OK], [DENIED]),
        ("2xx", [OK, EHLO], [DENIED, GREYLISTED]),
        ("25x", [OK], [DENIED, GREYLISTED]),
        ("5XX", [DENIED], [OK]),
        ([250, "4xx"], [OK, GREYLISTED], [DENIED]),
        ({"code": 550}, [DENIED], [OK]),
        ({"code": ["4xx", "5xx"]}, [DENIED, GREYLISTED], [OK]),
        ({}, [OK, DENIED], []),
    ],
)
def test_reply_code_forms(spec: Any, passes: list[Reply], fails: list[Reply]) -> None:
    for r in passes:
        assert check(spec, r) is None, r.summary()
    for r in fails:
        assert check(spec, r) is not None, r.summary()


def test_code_mismatch_says_what_was_expected_and_what_came() -> None:
    assert check([250, "4xx"], DENIED) == "expected 250 or 4xx, got 550 5.7.1 Relaying denied (+1 more lines)"


def test_no_expectation_accepts_anything() -> None:
    assert check(None, DENIED) is None


def test_closed_fails_when_a_reply_comes() -> None:
    assert check("closed", OK) == "expected the server to close the connection, got 250 2.1.5 Ok"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("policy", True),  # found on the second line
        ("Relaying denied", True),
        ("(?m)^5\\.7\\.1 see", True),  # each line's text starts after its code
        ("^550", False),  # codes are not part of the text
        ("denied.5", False),  # lines are joined with a newline, which . does not match
        ("(?s)denied.5", True),
        ("accepted", False),
    ],
)
def test_text_is_searched_in_every_line(text: str, ok: bool) -> None:
    assert (check({"text": text}, DENIED) is None) is ok


def test_text_mismatch_message() -> None:
    assert check({"code": 550, "text": "accepted"}, DENIED) == (
        "expected text matching /accepted/, got 550 5.7.1 Relaying denied (+1 more lines)"
    )


def test_text_with_template_variable() -> None:
    spec = {"code": 250, "text": "queued as {{ queue_id }}$"}
    assert check(spec, QUEUED, lambda text: render(text, {"queue_id": "4BvX1"})) is None
    assert check(spec, QUEUED, lambda text: render(text, {"queue_id": "7ZZZZ"})) == (
        "expected text matching /queued as 7ZZZZ$/, got 250 2.0.0 Ok: queued as 4BvX1"
    )


@pytest.mark.parametrize(
    ("enhanced", "r", "ok"),
    [
        ("2.1.5", OK, True),
        ("2.1.0", OK, False),
        ("5.7.1", DENIED, True),
        ("5.7.x", DENIED, True),
        ("5.x.x", DENIED, True),
        ("x.7.1", GREYLISTED, True),
        ("5.7.x", GREYLISTED, False),
        ("5.1.x", DENIED, False),
        ("2.x.x", EHLO, False),  # no enhanced code at all
    ],
)
def test_enhanced_code(enhanced: str, r: Reply, ok: bool) -> None:
    assert (check({"enhanced": enhanced}, r) is None) is ok


def test_enhanced_mismatch_names_both() -> None:
    assert check({"enhanced": "5.7.x"}, GREYLISTED) == (
        "expected enhanced code 5.7.x, got 4.7.1 in 451 4.7.1 Try again later"
    )
    assert check({"enhanced": "2.0.0"}, EHLO) == (
        "expected enhanced code 2.0.0, got none in 250 mx.example.test Hello (+3 more lines)"
    )


def test_enhanced_code_written_with_leading_zeros_in_the_reply() -> None:
    assert check({"enhanced": "5.7.1"}, reply(b"550 5.07.001 Denied\r\n")) is None


def test_enhanced_pattern_with_leading_zeros_matches_the_same_reply_text() -> None:
    assert check({"enhanced": "5.7.01"}, reply(b"550 5.7.01 Denied\r\n")) is None


def test_keywords_present() -> None:
    assert check({"code": 250, "keywords": ["starttls", "SIZE"]}, EHLO) is None
    assert check({"keywords": ["STARTTLS", "DSN", "CHUNKING"]}, EHLO) == (
        "EHLO keywords missing: DSN, CHUNKING (offered: SIZE, 8BITMIME, STARTTLS)"
    )


def test_greeting_line_is_not_a_keyword() -> None:
    """RFC 5321 §4.1.1.1: the first line of the EHLO reply is the server's name, the keywords follow it."""
    assert check({"keywords": ["MX.EXAMPLE.TEST"]}, EHLO) == (
        "EHLO keywords missing: MX.EXAMPLE.TEST (offered: SIZE, 8BITMIME, STARTTLS)"
    )


def test_keywords_absent() -> None:
    assert check({"absent": ["AUTH", "dsn"]}, EHLO) is None
    assert check({"absent": ["AUTH", "starttls"]}, EHLO) == (
        "EHLO keywords offered but expected absent: starttls"
    )


def test_every_part_of_a_mapping_must_hold() -> None:
    spec = {"code": "2xx", "enhanced": "2.x.x", "text": "Ok", "keywords": [], "absent": ["STARTTLS"]}
    assert check(spec, OK) is None
    assert check(spec, EHLO) is not None  # no enhanced code, no "Ok", and STARTTLS offered


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (250, "250"),
        ("2xx", "2xx"),
        ([250, "4xx"], "250 or 4xx"),
        ("closed", "the server closes the connection"),
        ({"code": 250}, "250"),
        ({"code": ["2xx", 354], "text": "Ok"}, "2xx or 354, text matching /Ok/"),
        ({"enhanced": "5.7.x"}, "any reply, enhanced 5.7.x"),
        ({"keywords": ["STARTTLS", "SIZE"], "absent": ["AUTH"]}, "any reply, keywords STARTTLS, SIZE, without AUTH"),
        (
            {"code": 550, "enhanced": "5.7.1", "text": "denied", "keywords": ["X"], "absent": ["Y"]},
            "550, enhanced 5.7.1, text matching /denied/, keywords X, without Y",
        ),
    ],
)
def test_describe(spec: Any, words: str) -> None:
    assert describe(spec) == words


def test_a_keyword_sent_as_keyword_equals_value_is_found() -> None:
    courier = reply(b"250-mail.smtprun.test Ok.\r\n250-XVERP=COURIER\r\n250-XEXDATA\r\n"
                    b"250 XSECURITY=NONE,STARTTLS\r\n")
    assert check({"keywords": ["XVERP", "xsecurity"]}, courier) is None
    assert check({"absent": ["XVERP"]}, courier) == "EHLO keywords offered but expected absent: XVERP"


def test_a_4xx_is_said_to_be_temporary_and_a_5xx_is_not() -> None:
    assert check(250, GREYLISTED) == ("expected 250, got 451 4.7.1 Try again later (a temporary failure: the server "
                                      "asks to try again later; `retry:` tries the case again)")
    assert check(250, DENIED).startswith("expected 250, got 550") and "temporary" not in check(250, DENIED)
    assert check("4xx", GREYLISTED) is None
