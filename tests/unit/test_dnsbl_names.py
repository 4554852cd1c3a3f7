"""Blocklist names built as RFC 5782 says, without a network."""

from __future__ import annotations

from runner.net.dnsbl import listing_name


def test_ipv4_octets_and_ipv6_nibbles_are_reversed_under_the_zone():
    assert listing_name("192.0.2.99", "zen.example.") == "99.2.0.192.zen.example"  # §2.1
    assert listing_name("2001:db8::1", "bl.example") == (  # §2.4: 32 nibbles, least significant first
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example")
