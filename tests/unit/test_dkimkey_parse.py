"""DKIM key records read without a network (RFC 6376 §3.6.1, RFC 8463)."""

from __future__ import annotations

import base64

from runner.net.dkimkey import DkimKey, parse_key


def _key(record: str) -> DkimKey:
    key = DkimKey("s", "s._domainkey.example.com")
    parse_key(key, record)
    return key


def test_an_ed25519_key_is_its_type_and_256_bits():
    key = _key("v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(32)).decode())
    assert (key.key_type, key.bits, key.errors) == ("ed25519", 256, [])


def test_broken_records_are_named():
    assert _key("v=DKIM1; k=dsa; p=AAAA").errors == [
        "k=dsa is not a key type verifiers know: rsa or ed25519 (RFC 6376 §3.6.1, RFC 8463)"]
    assert _key("v=DKIM1; k=rsa; p=%%%").errors == ["p= is not base64 (RFC 6376 §3.6.1)"]
    assert _key("v=DKIM1; k=rsa").errors == ["no p= tag: the public key is required (RFC 6376 §3.6.1)"]
    assert _key("k=rsa; v=DKIM1; p=").errors[0] == "v=DKIM1: the version must be DKIM1 and come first (RFC 6376 §3.6.1)"
