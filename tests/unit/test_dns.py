"""runner.net.dns without a name server: parsing name servers, checking resolver settings, reading DER.

Anything that sends a query is in tests/integration/test_dns_server.py; the unit conftest makes any
socket use here fail, so the IP-literal test below also proves that no query is sent for a literal.
"""

from __future__ import annotations

import asyncio

import pytest
import trustme

from runner.net.dns import ResolverConfig, parse_nameserver, resolve_host
from runner.net.x509 import subject_public_key_info
from tests.support.certs import der_chain, spki_oracle

# Nothing listens here, and nothing may be asked: an IP literal needs no query.
UNUSED = ResolverConfig(nameservers=(("127.0.0.1", 9),), timeout=1.0)


@pytest.mark.parametrize("literal", ["192.0.2.1", "2001:db8::1"])
def test_ip_literals_are_returned_as_is(literal):
    assert asyncio.run(resolve_host(literal, UNUSED)) == (literal,)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[::1]", ("::1", 53)),
        (" 10.0.0.53 ", ("10.0.0.53", 53)),
    ],
)
def test_parse_nameserver(text, parsed):
    assert parse_nameserver(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ns1.example.test", "'ns1.example.test' is not an IP address"),
        ("127.0.0.1:dns", "port 'dns' is not a number"),
        ("127.0.0.1:0", "port must be 1-65535"),
        ("127.0.0.1:65536", "port must be 1-65535"),
        ("[127.0.0.1]:53", "brackets are for IPv6 addresses"),
        ("[::1]:", "port '' is not a number"),
        ("", "'' is not an IP address"),
        ("::1:5353:", "is not an IP address"),
        ("127.0.0.1:５３", "is not a number"),
    ],
)
def test_parse_nameserver_errors(text, message):
    with pytest.raises(ValueError, match="invalid name server .*" + message.replace("[", r"\[")):
        parse_nameserver(text)


def test_resolver_config_is_checked():
    with pytest.raises(ValueError, match="timeout"):
        ResolverConfig(timeout=0)
    with pytest.raises(ValueError, match="families"):
        ResolverConfig(families=("ipv5",))
    with pytest.raises(ValueError, match="port"):
        ResolverConfig(nameservers=(("127.0.0.1", 70000),))
    with pytest.raises(ValueError, match=r"invalid name server: 'ns1.example.test' is not an IP address"):
        ResolverConfig(nameservers=(("ns1.example.test", 53),))


# --- the DER walker behind TLSA selector 1 --------------------------------------------------------------------


@pytest.mark.parametrize("key_type", [trustme.KeyType.ECDSA, trustme.KeyType.RSA], ids=["ecdsa", "rsa"])
def test_spki_walker_matches_cryptography(key_type):
    for der in der_chain(key_type):
        assert subject_public_key_info(der) == spki_oracle(der)


def test_spki_walker_without_version_tag():
    def tlv(tag: int, content: bytes) -> bytes:
        return bytes([tag, len(content)]) + content

    spki = tlv(0x30, tlv(0x30, tlv(0x06, b"\x2a\x03")) + tlv(0x03, b"\x00\x01\x02"))
    tbs = tlv(0x02, b"\x01") + tlv(0x30, b"") + tlv(0x30, b"") + tlv(0x30, b"") + tlv(0x30, b"") + spki
    assert subject_public_key_info(tlv(0x30, tlv(0x30, tbs) + tlv(0x30, b"") + tlv(0x03, b"\x00"))) == spki


@pytest.mark.parametrize("der", [b"", b"\x04\x00", b"\x30\x05\x30\x03\x02\x01", b"\x30\x80\x00\x00"])
def test_spki_walker_rejects_garbage(der):
    with pytest.raises(ValueError, match=r"not a DER certificate|truncated|bad length"):
        subject_public_key_info(der)
