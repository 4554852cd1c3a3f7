"""Key exchange and the ServerHello's other answers, learned from hand-built ClientHellos (runner/net/tlshello.py)
that stop at the server's first flight: the ECDHE groups per version, the finite-field DH prime a DHE suite gets,
secure renegotiation (RFC 5746), TLS compression (CRIME) and OCSP stapling (RFC 6066 §8).

Why not Python's ssl: it can offer one group at a time (SSLContext.set_ecdh_curve sets the client's groups under
OpenSSL 3), but never says which group or DH size a handshake used, whether the server stapled, or whether it
answered renegotiation_info; and it cannot offer compression. docs/tls-audit.md has the measurement.

Groups are found by elimination, as suites are: offer every group, note the one the server names (the curve of
its ServerKeyExchange under TLS 1.2; the group of its HelloRetryRequest under TLS 1.3, asked for by sending no key
share), offer the rest again, until it refuses. The order found is the server's when it enforces its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from runner.net.tlshello import (
    EXT_RENEGOTIATION_INFO,
    GROUPS,
    TLS12_GROUPS,
    TLS13_GROUPS,
    TLS13_SUITES,
    Flight,
    Hello,
    HelloError,
    dh_group_name,
)

__all__ = ["Exchange", "KeyExchange", "Suites", "probe"]

# Send one hello on a fresh connection, give back the server's first flight (None: it hung up without one).
Exchange = Callable[[Hello, bool], Awaitable[Flight | None]]

CLIENT_RENEGOTIATION = ("Python's ssl cannot start a renegotiation and a hand-built hello stops before any key is "
                        "agreed")


@dataclass(frozen=True)
class Suites:
    """IANA codes of the TLS <= 1.2 suites to offer, from the local OpenSSL's table."""

    all: tuple[int, ...]
    ecdhe: tuple[int, ...]
    dhe: tuple[int, ...]


@dataclass
class KeyExchange:
    groups: dict[str, list[str]] = field(default_factory=dict)  # version → groups accepted, in the order found
    dh: dict[str, Any] = field(default_factory=dict)  # {"bits", "group", "version"} when a DHE suite is accepted
    secure_renegotiation: bool | None = None  # None: not tried (see not_tried)
    compression: str | None = None  # "none" or "DEFLATE"; None: not tried
    ocsp_stapling: bool | None = None
    not_tried: dict[str, str] = field(default_factory=dict)


async def _ask(exchange: Exchange, hello: Hello, dhe: bool = False) -> Flight | None:
    flight = await exchange(hello, dhe)
    return None if flight is None or flight.alert is not None else flight


async def _groups(exchange: Exchange, base: Hello, found: KeyExchange) -> None:
    """Elimination over the groups of `base`; the groups land under the version the server negotiated."""
    left, order, version = list(base.groups), [], base.version
    while left:
        flight = await _ask(exchange, Hello(base.version, base.suites, tuple(left), base.name, status_request=False))
        if flight is None or flight.group not in left:
            break
        if base.version == "TLSv1.3" and not flight.retry:
            break
        version = flight.version
        order.append(flight.group)
        left.remove(flight.group)
    if order:
        found.groups[version] = [GROUPS[g] for g in order]


async def _dh(exchange: Exchange, name: str, suites: Suites, found: KeyExchange) -> None:
    if not suites.dhe:
        found.not_tried["DH"] = "the local OpenSSL has no DHE suite"
        return
    flight = await _ask(exchange, Hello("TLSv1.2", suites.dhe, TLS12_GROUPS, name, status_request=False), True)
    if flight is not None and flight.dh_prime:
        found.dh = {"bits": int.from_bytes(flight.dh_prime, "big").bit_length(),
                    "group": dh_group_name(flight.dh_prime), "version": flight.version}


async def _features(exchange: Exchange, name: str, suites: Suites, found: KeyExchange) -> None:
    flight = await _ask(exchange, Hello("TLSv1.2", suites.all, TLS12_GROUPS, name, compression=True))
    if flight is None:
        why = "no TLS 1.2 or older handshake was accepted"
        for fact in ("secure renegotiation", "compression", "OCSP stapling"):
            found.not_tried[fact] = why
        return
    found.secure_renegotiation = EXT_RENEGOTIATION_INFO in flight.extensions
    found.compression = "DEFLATE" if flight.compression == 1 else "none"
    found.ocsp_stapling = flight.stapled


async def probe(exchange: Exchange, name: str, suites: Suites) -> KeyExchange:
    """All of it, side by side. A flight smtprun cannot read is said in not_tried, never guessed."""
    found = KeyExchange()
    found.not_tried["client-initiated renegotiation"] = CLIENT_RENEGOTIATION
    jobs: dict[str, Awaitable[None]] = {
        "groups TLSv1.3": _groups(exchange, Hello("TLSv1.3", TLS13_SUITES, TLS13_GROUPS, name), found),
        "DH": _dh(exchange, name, suites, found),
        "secure renegotiation": _features(exchange, name, suites, found),
    }
    if suites.ecdhe:
        jobs["groups TLSv1.2"] = _groups(exchange, Hello("TLSv1.2", suites.ecdhe, TLS12_GROUPS, name), found)
    else:
        found.not_tried["groups TLSv1.2"] = "the local OpenSSL has no ECDHE suite"
    results = await asyncio.gather(*jobs.values(), return_exceptions=True)
    for what, result in zip(jobs, results, strict=True):
        if isinstance(result, HelloError):
            found.not_tried[what] = str(result)
        elif isinstance(result, BaseException):
            raise result
    return found
