"""MTA-STS records and policies read without a network (RFC 8461 §3.1, §3.2, §4.1)."""

from __future__ import annotations

import pytest

from runner.net.mtasts import mx_matches, parse_policy, parse_record


@pytest.mark.parametrize(("host", "pattern", "matches"), [
    ("mail.example.com", "mail.example.com", True),
    ("MAIL.example.com.", "mail.example.com", True),
    ("mail.example.com", "*.example.com", True),
    ("example.com", "*.example.com", False),  # §4.1: the wildcard is one whole label, never none
    ("a.b.example.com", "*.example.com", False),  # ...and never two
    ("mail.example.org", "*.example.com", False),
])
def test_mx_patterns_match_as_rfc_8461_section_4_1_says(host, pattern, matches):
    assert mx_matches(host, pattern) is matches


def test_a_policy_with_lf_lines_and_several_mx_is_read_whole():
    policy = parse_policy("version: STSv1\nmode: testing\nmx: a.example.com\nmx: *.b.example.com\nmax_age: 86400\n"
                          "future_key: ignored\n")
    assert (policy.version, policy.mode, policy.mx, policy.max_age, policy.errors) == (
        "STSv1", "testing", ["a.example.com", "*.b.example.com"], 86400, [])


def test_every_broken_field_is_named():
    policy = parse_policy("version: STSv2\r\nmode: on\r\nmx: bad_host..x\r\nmax_age: -1\r\nnot a field\r\n")
    assert policy.errors == [
        "line 5 'not a field' is not a `key: value` field (RFC 8461 §3.2)",
        "version is STSv2, not STSv1 (RFC 8461 §3.2)",
        "mode is on, not one of enforce, testing, none (RFC 8461 §3.2)",
        "max_age is -1, not a number of seconds (RFC 8461 §3.2)",
        "mx: 'bad_host..x' is not a host name or *.domain pattern (RFC 8461 §3.2)",
    ]


def test_max_age_is_bounded_and_a_short_one_warned_of():
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 31557601\n").errors == [
        "max_age 31557601 is over 31557600 seconds, a year (RFC 8461 §3.2)"]
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 300\n").warnings[0].startswith("max_age 300 is under")


def test_an_enforce_policy_needs_mx_and_a_none_policy_does_not():
    assert parse_policy("version: STSv1\nmode: enforce\nmax_age: 86400\n").errors == [
        "the policy is enforce but has no mx: field (RFC 8461 §3.2)"]
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 86400\n").errors == []


@pytest.mark.parametrize(("record", "record_id", "errors"), [
    ("v=STSv1; id=20190429T010101;", "20190429T010101", []),
    ("v=STSv1;", None, ["no id= field (RFC 8461 §3.1)"]),
    ("v=STSv1; id=2019-04-29", None, ["id=2019-04-29 is not 1 to 32 letters and digits (RFC 8461 §3.1)"]),
])
def test_the_record_id_is_checked(record, record_id, errors):
    assert parse_record(record) == (record_id, errors)
