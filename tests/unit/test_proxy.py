"""target.proxy: the PROXY protocol header (HAProxy's spec, versions 1 and 2) as bytes, the plans refused
with a reason, and the header going out first, before anything else, on a real connection."""

from __future__ import annotations

import pytest

from runner.smtp.proxy import ProxyHeader, encode, parse_endpoint
from tests.support.validation import only_problem

SIG = b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"  # the spec §2.2, byte by byte


def test_version_1_ipv4_is_the_spec_example() -> None:
    header = ProxyHeader(1, "192.168.0.1:56324", "192.168.0.11:443")
    assert encode(header) == b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"


def test_version_1_ipv6_drops_the_brackets() -> None:
    header = ProxyHeader(1, "[2001:db8::7]:4321", "[2001:db8::1]:25")
    assert encode(header) == b"PROXY TCP6 2001:db8::7 2001:db8::1 4321 25\r\n"


def test_version_2_ipv4() -> None:
    header = ProxyHeader(2, "203.0.113.7:4321", "192.0.2.1:25")
    assert encode(header) == (SIG + b"\x21\x11\x00\x0c" + b"\xcb\x00\x71\x07" + b"\xc0\x00\x02\x01"
                              + b"\x10\xe1" + b"\x00\x19")


def test_version_2_ipv6() -> None:
    header = ProxyHeader(2, "[2001:db8::7]:4321", "[::1]:25")
    assert encode(header) == (SIG + b"\x21\x21\x00\x24"
                              + b"\x20\x01\x0d\xb8" + b"\x00" * 11 + b"\x07"
                              + b"\x00" * 15 + b"\x01"
                              + b"\x10\xe1" + b"\x00\x19")


@pytest.mark.parametrize(("text", "words"), [
    ("203.0.113.7", "is not an address and port"),
    ("203.0.113.7:70000", "is not an address and port"),
    ("mail.example.com:25", "is not an IP address"),
    ("2001:db8::7:25", "write an IPv6 address in brackets"),
    ("[203.0.113.7]:25", "write an IPv6 address in brackets, an IPv4 one without"),
])
def test_endpoints_refused(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_endpoint(text)


@pytest.mark.parametrize(("proxy", "message"), [
    ("{version: 2, source: '[2001:db8::7]:4321', destination: '192.0.2.1:25'}",
     "target.proxy: source [2001:db8::7]:4321 and destination 192.0.2.1:25 must both be IPv4 or both IPv6: "
     "one header names one protocol"),
    ("{source: 'mx.example:1', destination: '192.0.2.1:25'}",
     "target.proxy: 'mx.example:1': 'mx.example' is not an IP address (a PROXY header carries addresses, "
     "not names)"),
])
def test_plans_refused_with_the_reason(tmp_path, proxy: str, message: str) -> None:
    plan = f"target:\n  host: 127.0.0.1\n  proxy: {proxy}\nsteps:\n  - send: QUIT\n"
    where, text = only_problem(tmp_path, plan)[:2]
    assert where.split(":")[0] == "3"
    assert text == message


def test_version_2_is_described_in_hex() -> None:
    from runner.smtp.proxy import describe

    assert describe(ProxyHeader(2, "203.0.113.7:4321", "192.0.2.1:25")) == (
        "PROXY protocol v2 header sent (28 bytes): TCP from 203.0.113.7:4321 to 192.0.2.1:25: "
        "0d0a0d0a000d0a515549540a 2111000c cb007107c000020110e10019")
