"""Suites by elimination with hand-built hellos (runner/net/tlssuites.py), against servers written in bytes: the
ClientHello smtprun sends is read as a server reads it, and the ServerHello or alert written by hand is read back
by the flight reader; the RC4, 3DES and EXPORT suites Debian's OpenSSL lacks are found and judged by class."""

from __future__ import annotations

import asyncio
import struct

from runner.net.tlshello import FlightReader, Hello, client_hello
from runner.net.tlsscan import Offer, suite_facts
from runner.net.tlssuites import LEGACY, TLS13_NAMES, eliminate, enforces_order, legacy, tls13
from runner.plan.options import TlsOffer
from runner.run import tlspolicy
from runner.run.tlspolicy import suite_classes
from tests.support.oldtls import RC4_SHA, OldTls, answer, offered

RETRY = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")


def exchange_with(server, log=None):
    """An Exchange whose peer is `server(client hello bytes) -> server bytes`."""
    async def exchange(hello: Hello, dhe: bool):
        wire = client_hello(hello)
        if log is not None:
            log.append(hello.suites)
        return FlightReader(dhe=dhe).feed(server(wire))
    return exchange


def tls13_server(accepts: tuple[int, ...], server_order: bool):
    """A TLS 1.3 server answering a hello without a key share with a HelloRetryRequest (RFC 8446 §4.1.4)."""
    def respond(wire: bytes) -> bytes:
        _, suites = offered(wire)
        mine = [s for s in accepts if s in suites] if server_order else [s for s in suites if s in accepts]
        if not mine:
            return bytes([21, 3, 3, 0, 2, 2, 40])
        exts = struct.pack("!HHH", 43, 2, 0x0304) + struct.pack("!HHH", 51, 2, 29)
        body = b"\x03\x03" + RETRY + b"\x00" + struct.pack("!HB", mine[0], 0) + struct.pack("!H", len(exts)) + exts
        message = b"\x02" + len(body).to_bytes(3, "big") + body
        return struct.pack("!BHH", 22, 0x0303, len(message)) + message
    return respond


def test_every_tls13_suite_is_found_in_the_servers_order_and_the_order_is_known_to_be_its_own():
    ccm_too = (0x1302, 0x1304, 0x1301)
    found = asyncio.run(tls13(exchange_with(tls13_server(ccm_too, server_order=True)), "mx.example.net"))
    assert [TLS13_NAMES[s] for s in found.suites] == [
        "TLS_AES_256_GCM_SHA384", "TLS_AES_128_CCM_SHA256", "TLS_AES_128_GCM_SHA256"]
    assert found.server_order is True
    follows = asyncio.run(tls13(exchange_with(tls13_server(ccm_too, server_order=False)), "mx.example.net"))
    assert set(follows.suites) == set(ccm_too) and follows.server_order is False


def test_all_five_tls13_suites_are_offered_first_and_one_less_each_time():
    log: list[tuple[int, ...]] = []
    asyncio.run(tls13(exchange_with(tls13_server((0x1303,), server_order=True), log), "mx.example.net"))
    assert log == [(0x1301, 0x1302, 0x1303, 0x1304, 0x1305), (0x1301, 0x1302, 0x1304, 0x1305)]


def test_a_server_without_tls13_yields_nothing_and_one_suite_has_no_order():
    refused = asyncio.run(tls13(exchange_with(lambda wire: bytes([21, 3, 3, 0, 2, 2, 70])), "mx.example.net"))
    assert refused.suites == () and refused.server_order is None
    one = asyncio.run(tls13(exchange_with(tls13_server((0x1301,), server_order=False)), "mx.example.net"))
    assert one.suites == (0x1301,) and one.server_order is None


def test_rc4_3des_and_export_suites_the_local_openssl_lacks_are_found_in_the_servers_order():
    server = OldTls()
    found = asyncio.run(legacy(exchange_with(lambda wire: answer(server, wire)), "TLSv1", "mx.example.net", set()))
    assert [LEGACY[code]["name"] for code in found.suites] == ["RC4-SHA", "DES-CBC3-SHA", "EXP-RC4-MD5"]
    assert found.server_order is True  # it answers in its own order, whatever the client's


def test_a_suite_accepted_only_under_a_lower_version_is_not_counted_under_a_higher_one():
    server = OldTls()  # TLS 1.0 at most: a TLS 1.2 hello is answered with a TLS 1.0 ServerHello
    found = asyncio.run(legacy(exchange_with(lambda wire: answer(server, wire)), "TLSv1.2", "mx.example.net", set()))
    assert found.suites == () and found.server_order is None


def test_suites_the_local_openssl_has_are_left_to_it():
    log: list[tuple[int, ...]] = []
    server = OldTls()
    found = asyncio.run(legacy(exchange_with(lambda wire: answer(server, wire), log), "TLSv1", "mx.example.net",
                               {"RC4-SHA"}))
    assert all(RC4_SHA not in suites for suites in log)
    assert [LEGACY[code]["name"] for code in found.suites] == ["DES-CBC3-SHA", "EXP-RC4-MD5"]


def test_the_forbidden_classes_fire_on_the_suites_found():
    names = ["RC4-SHA", "DES-CBC3-SHA", "EXP-RC4-MD5", "ADH-RC4-MD5", "ECDH-RSA-NULL-SHA", "DES-CBC-SHA",
             "IDEA-CBC-SHA"]
    facts = suite_facts(names)
    assert {name: suite_classes(name, facts[name]) for name in names} == {
        "RC4-SHA": ["RC4"], "DES-CBC3-SHA": ["3DES", "CBC"], "EXP-RC4-MD5": ["EXPORT", "RC4"],
        "ADH-RC4-MD5": ["LOW", "RC4", "anonymous"], "ECDH-RSA-NULL-SHA": ["NULL"], "DES-CBC-SHA": ["LOW", "CBC"],
        "IDEA-CBC-SHA": ["3DES", "CBC"]}
    assert [facts[name]["id"] for name in names[:3]] == ["0x0005", "0x000A", "0x0003"]
    found = Offer(versions={"TLSv1": names[:3]}, suites=suite_facts(names[:3]))
    failures, _ = tlspolicy.judge(found, tlspolicy.rules(TlsOffer.read({})))
    assert "suite RC4-SHA (TLSv1) is RC4 (forbidden)" in failures
    assert "suite DES-CBC3-SHA (TLSv1) is 3DES (forbidden)" in failures
    assert "suite EXP-RC4-MD5 (TLSv1) is EXPORT and RC4 (forbidden)" in failures


def test_order_needs_two_suites():
    assert asyncio.run(enforces_order(exchange_with(lambda wire: b""), Hello("TLSv1.3", (), ()), [0x1301])) is None
    flight = asyncio.run(eliminate(exchange_with(lambda wire: bytes([21, 3, 1, 0, 2, 2, 40])),
                                   Hello("TLSv1", (RC4_SHA,), ())))
    assert flight == []
