"""Host and port as people write them, read and written in one place.

    address  = "[" host "]" [":" port]   ; brackets for an IPv6 literal (RFC 3986 §3.2.2)
             | host ":" port             ; exactly one colon
             | host                      ; a name, an IPv4 address, or a bare IPv6 literal
    port     = 1*DIGIT                   ; ASCII digits, 1-65535

Errors are ValueErrors whose message a user can read; the command line and the resolver say
them in their own words around it.
"""

from __future__ import annotations

import ipaddress

__all__ = ["check_port", "hostport", "parse_hostport", "parse_port", "split_hostport"]


def hostport(host: str, port: int | str) -> str:
    """host:port, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_port(port: object) -> int:
    """A port number given as a number: 1-65535, a bool is not one."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be 1-65535, not {port!r}")
    return port


def parse_port(text: str) -> int:
    """`port`: ASCII digits naming a TCP port, 1-65535."""
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise ValueError(f"not a TCP port: {text!r}")
    return int(text)


def split_hostport(text: str) -> tuple[str, str | None]:
    """`address` cut into host and port text (None when no port is written); nothing checked but
    the brackets, which must close and be followed by nothing or by `:port`."""
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"expected [IPv6] or [IPv6]:PORT, got {text!r}")
        return host, rest[1:] if rest else None
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, port
    return text, None


def parse_hostport(text: str) -> tuple[str, int | None]:
    """`address`, surrounding blanks ignored: (host, port or None). A host with several colons
    and no brackets must be an IPv6 address."""
    text = text.strip()
    if not text:
        raise ValueError("an empty host name")
    host, port = split_hostport(text)
    if not host:
        if text.startswith("["):
            raise ValueError(f"expected [IPv6] or [IPv6]:PORT, got {text!r}")
        raise ValueError(f"an empty host name in {text!r}")
    if port is None and ":" in host and not text.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"not a host, HOST:PORT or IPv6 address: {text!r}") from None
    return host, None if port is None else parse_port(port)
