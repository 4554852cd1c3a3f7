"""The PROXY protocol header a load balancer sends before the server's banner (HAProxy's "The PROXY protocol",
versions 1 and 2), so a server behind one (Postfix `smtpd_upstream_proxy_protocol = haproxy`, Exim
`hosts_proxy`) takes the client address from it. Pure functions: addresses in, bytes out."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["V2_SIGNATURE", "ProxyHeader", "describe", "encode", "parse_endpoint"]

# The spec §2.2: twelve bytes no version 1 header and no other protocol can start with.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V2_PROXY = 0x21  # §2.2: version 2 (high nibble), command PROXY (low nibble)
_V2_TCP = {4: 0x11, 6: 0x21}  # §2.2: AF_INET or AF_INET6 (high nibble), STREAM (low nibble)

Endpoint = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]


@dataclass(frozen=True)
class ProxyHeader:
    """A plan's `target.proxy`: the version, and the client and server addresses the header claims."""

    version: int
    source: str  # "203.0.113.7:4321", "[2001:db8::7]:4321"
    destination: str

    @classmethod
    def from_plan(cls, raw: dict[str, object]) -> ProxyHeader:
        """The header from the plan's mapping; ValueError, in the plan's words, when it cannot be sent."""
        header = cls(int(str(raw.get("version", 1))), str(raw.get("source", "")), str(raw.get("destination", "")))
        encode(header)
        return header


def parse_endpoint(text: str) -> Endpoint:
    """endpoint = IPv4 ":" port / "[" IPv6 "]" ":" port"""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not an address and port such as 203.0.113.7:4321 or [2001:db8::7]:4321")
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        address = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IP address (a PROXY header carries addresses, "
                         "not names)") from None
    if (address.version == 6) != bracketed:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, an IPv4 one without")
    return address, int(port)


def encode(header: ProxyHeader) -> bytes:
    """The header's bytes; ValueError when the version is not 1 or 2, or the addresses differ in family
    (the spec §2.1 and §2.2: one protocol, TCP4 or TCP6, for both)."""
    if header.version not in (1, 2):
        raise ValueError(f"version {header.version}: the PROXY protocol has versions 1 and 2")
    (src, sport), (dst, dport) = parse_endpoint(header.source), parse_endpoint(header.destination)
    if src.version != dst.version:
        raise ValueError(f"source {header.source} and destination {header.destination} must both be IPv4 "
                         "or both IPv6: one header names one protocol")
    if header.version == 1:  # §2.1: "PROXY TCP4 src dst sport dport\r\n", at most 107 bytes
        return f"PROXY TCP{src.version} {src} {dst} {sport} {dport}\r\n".encode("ascii")
    addresses = src.packed + dst.packed + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    return V2_SIGNATURE + bytes((_V2_PROXY, _V2_TCP[src.version])) + len(addresses).to_bytes(2, "big") + addresses


def describe(header: ProxyHeader) -> str:
    """The transcript's words for a binary version 2 header, its bytes in hex: shown as text, its signature's
    CR LF and "QUIT" would read as lines sent (a version 1 header is shown as the text it is)."""
    data = encode(header)
    return (f"PROXY protocol v2 header sent ({len(data)} bytes): TCP from {header.source} to {header.destination}: "
            f"{data[:12].hex()} {data[12:16].hex()} {data[16:].hex()}")
