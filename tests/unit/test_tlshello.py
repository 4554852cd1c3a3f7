"""The hand-built ClientHello and the reader of the server's first flight (runner/net/tlshello.py), on byte
literals: what a server that compresses, lacks RFC 5746 or staples looks like, fed in any split."""

from __future__ import annotations

import struct

import pytest

from runner.net.tlshello import (
    EXT_RENEGOTIATION_INFO,
    EXT_STATUS_REQUEST,
    FlightReader,
    Hello,
    HelloError,
    client_hello,
    dh_group_name,
)

RETRY = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")


def record(kind: int, body: bytes) -> bytes:
    return struct.pack("!BHH", kind, 0x0303, len(body)) + body


def message(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def server_hello(suite: int, compression: int = 0, extensions: bytes = b"", random: bytes = b"\x11" * 32) -> bytes:
    body = b"\x03\x03" + random + b"\x00" + struct.pack("!HB", suite, compression)
    return message(2, body + struct.pack("!H", len(extensions)) + extensions)


def ext(kind: int, data: bytes = b"") -> bytes:
    return struct.pack("!HH", kind, len(data)) + data


def feed_bytewise(reader: FlightReader, data: bytes):
    for n in range(len(data)):
        got = reader.feed(data[n:n + 1])
        if got is not None:
            assert n == len(data) - 1, "the flight ended before its last byte"
            return got
    return None


def test_a_tls12_flight_with_compression_no_rfc5746_and_a_stapled_response():
    flight = (server_hello(0xC030, compression=1, extensions=ext(EXT_STATUS_REQUEST))
              + message(11, b"\x00\x00\x00") + message(22, b"\x01\x00\x00\x00")
              + message(12, b"\x03\x00\x1d\x20" + b"\x00" * 32) + message(14, b""))
    got = feed_bytewise(FlightReader(), record(22, flight))
    assert got is not None
    assert (got.version, got.suite, got.compression, got.stapled, got.group) == ("TLSv1.2", 0xC030, 1, True, 29)
    assert EXT_RENEGOTIATION_INFO not in got.extensions


def test_a_dhe_key_exchange_gives_the_prime_across_records():
    prime = bytes.fromhex("ff" * 192)  # 1536 bits
    flight = server_hello(0x009F, extensions=ext(EXT_RENEGOTIATION_INFO, b"\x00")) + message(
        12, struct.pack("!H", len(prime)) + prime + b"\x00\x01\x02\x00\x01\x05") + message(14, b"")
    half = len(flight) // 2
    reader = FlightReader(dhe=True)
    assert reader.feed(record(22, flight[:half])) is None
    got = reader.feed(record(22, flight[half:]))
    assert got is not None and len(got.dh_prime) * 8 == 1536 and EXT_RENEGOTIATION_INFO in got.extensions
    assert dh_group_name(got.dh_prime) == "custom"


def test_a_hello_retry_request_names_the_group_and_an_alert_is_a_refusal():
    hrr = server_hello(0x1302, extensions=ext(43, b"\x03\x04") + ext(51, b"\x00\x18"), random=RETRY)
    got = FlightReader().feed(record(22, hrr))
    assert got is not None and got.retry and got.version == "TLSv1.3" and got.group == 24
    refused = FlightReader().feed(record(21, b"\x02\x28"))
    assert refused is not None and refused.alert == 40


def test_what_is_not_tls_or_too_long_is_an_error_in_words():
    with pytest.raises(HelloError, match="did not answer with a TLS handshake"):
        FlightReader().feed(b"554 5.5.1 no TLS here\r\n")
    with pytest.raises(HelloError, match="malformed"):
        FlightReader().feed(record(22, message(2, b"\x03")))
    reader = FlightReader()
    with pytest.raises(HelloError, match="passed"):
        for _ in range(20):
            reader.feed(record(22, message(11, b"\x00" * 16000)))


def test_the_client_hello_names_the_host_but_never_an_address_and_offers_deflate_when_asked():
    named = client_hello(Hello("TLSv1.2", (0xC030,), (29,), "mx.example.net", compression=True))
    assert named[:3] == b"\x16\x03\x01" and b"mx.example.net" in named and b"\x02\x01\x00" in named
    assert b"127.0.0.1" not in client_hello(Hello("TLSv1.2", (0xC030,), (29,), "127.0.0.1"))
    tls13 = client_hello(Hello("TLSv1.3", (0x1301,), (29, 23), "mx.example.net"))
    assert ext(43, b"\x02\x03\x04") in tls13 and ext(51, b"\x00\x00") in tls13  # no key share: the server says
