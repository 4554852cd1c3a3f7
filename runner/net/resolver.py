"""Asking name servers: one run's DNS client over c-ares (pycares), shared by every lookup the run makes.

A `Lookups` belongs to one run (an smtprun invocation, one exporter probe). It keeps a c-ares channel per
resolver configuration; asks at most `in_flight` queries at once, however many sessions want answers (500
sessions must not fire 1,500 datagrams at one name server and lose them to its full socket buffer); and asks
each name and type once: every target whose mail host is mx.example.com shares one answer, or one failure.
The timeout counts from the moment a query is sent, not from when it joined the queue.

c-ares does the wire format, retries and the fall-back to TCP for truncated answers (RFC 7766 §5) in C, at a
tenth of the CPU a query costs in dnspython: a fleet of 10,000 `mx:` targets (30,000 queries) is not DNS-bound.
pycares is imported when the first channel is made, so importing this module stays cheap. Every failure is a
DnsError whose message names the query: "NXDOMAIN for example.test MX", "DNS timeout after 2s for
mx1.example.test AAAA (name server 127.0.0.1:5353)".
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.errors import SmtprunError
from runner.net.address import check_port, hostport

__all__ = ["FAMILIES", "MAX_IN_FLIGHT", "DnsError", "Lookups", "ResolverConfig"]

FAMILIES = {"ipv4": "A", "ipv6": "AAAA"}
MAX_IN_FLIGHT = 64  # queries one run has outstanding at once, whatever --jobs says
PER_TRY = 2.0  # seconds a name server gets per try at most (dnspython's and glibc's default), within the timeout
_RESEND_AFTER = 0.05  # c-ares gave up early (its adaptive timeouts) and this much time is left: ask again
# c-ares statuses for a name server's answer code (RFC 1035 §4.1.1, RFC 6895 §2.3): named as the server said it
_RCODES = {"ARES_ENOTFOUND": "NXDOMAIN", "ARES_ESERVFAIL": "SERVFAIL", "ARES_EREFUSED": "REFUSED",
           "ARES_ENOTIMP": "NOTIMP", "ARES_EFORMERR": "FORMERR"}


class DnsError(SmtprunError):
    """A lookup failed; the message names the query, e.g. "SERVFAIL for example.test MX"."""


@dataclass(frozen=True)
class ResolverConfig:
    """Where and how long to ask. No nameservers means the system resolver (/etc/resolv.conf)."""

    nameservers: tuple[tuple[str, int], ...] = ()
    timeout: float = 5.0  # seconds per query, all retries included
    families: tuple[str, ...] = ("ipv4", "ipv6")

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "nameservers", tuple(server(host, port) for host, port in self.nameservers))
        except ValueError as e:
            raise ValueError(f"invalid name server: {e}") from None
        object.__setattr__(self, "families", tuple(self.families))
        if not (isinstance(self.timeout, int | float) and math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"DNS timeout must be a positive number of seconds, not {self.timeout!r}")
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown or not self.families:
            raise ValueError(f"address families must be some of {', '.join(FAMILIES)}, not {list(self.families)}")


def server(host: str, port: object) -> tuple[str, int]:
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    return address, check_port(port)


def shown(name: str) -> str:
    return name if name == "." else name.rstrip(".")


@dataclass
class _Channel:
    cares: Any  # pycares.Channel
    servers: str  # "name server 127.0.0.1:5353", for messages


class Lookups:
    """One run's DNS: a channel per configuration, at most `in_flight` queries at once, each name/type asked once.

    Close it when the run ends (`async with`, or close()): what is still being asked is cancelled.
    """

    def __init__(self, in_flight: int = MAX_IN_FLIGHT) -> None:
        if in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, not {in_flight}")
        self.in_flight = in_flight
        self.asked = 0  # queries sent to name servers, after de-duplication
        self.peak = 0  # the most queries that were outstanding at once
        self._busy = 0
        self._gate = asyncio.Semaphore(in_flight)
        self._channels: dict[tuple[tuple[tuple[str, int], ...], float], _Channel] = {}
        self._answers: dict[tuple[str, str, tuple[tuple[str, int], ...], float], asyncio.Future[list[Any]]] = {}
        self._closed = False

    async def __aenter__(self) -> Lookups:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()

    async def query(self, name: str, rdtype: str, config: ResolverConfig) -> list[Any]:
        """The answer's values of rdtype: addresses (A, AAAA), (preference, exchange) (MX), bytes (TXT, the
        strings joined as RFC 7208 §3.3 says), names (PTR), (usage, selector, mtype, data) (TLSA); [] when the
        name exists without such records. Failures are DnsError. A lookup already made or under way is shared."""
        if self._closed:
            raise DnsError(f"DNS lookup of {shown(name)} {rdtype} after the run ended")
        key = (shown(name).lower(), rdtype, config.nameservers, config.timeout)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._answers[key] = asyncio.ensure_future(self._ask(name, rdtype, config))
            answer.add_done_callback(_retrieved)
        return list(await asyncio.shield(answer))  # one waiter given up (its session's timeout) leaves the rest

    async def _ask(self, name: str, rdtype: str, config: ResolverConfig) -> list[Any]:
        channel = self._channel(config)
        async with self._gate:
            self.asked += 1
            self._busy += 1
            self.peak = max(self.peak, self._busy)
            try:
                status, result = await _until_answered(channel.cares, name, rdtype, config.timeout)
            finally:
                self._busy -= 1
        return _values(status, result, rdtype, f"{shown(name)} {rdtype}", channel.servers, config)

    def _channel(self, config: ResolverConfig) -> _Channel:
        key = (config.nameservers, config.timeout)
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = _open(config)
        return channel

    def close(self) -> None:
        """Cancel what is still being asked and let the channels go; queries after this are refused."""
        self._closed = True
        for channel in self._channels.values():
            channel.cares.cancel()  # pending callbacks get ECANCELLED, on this thread
            channel.cares.close()
        self._channels.clear()


def _retrieved(answer: asyncio.Future[list[Any]]) -> None:
    """Mark a shared answer's failure as seen even when every waiter gave up before it came."""
    if not answer.cancelled():
        answer.exception()


def _open(config: ResolverConfig) -> _Channel:
    import pycares

    per_try = min(PER_TRY, config.timeout)
    options: dict[str, Any] = {"timeout": per_try, "tries": min(8, math.ceil(config.timeout / per_try) + 1)}
    flags = pycares.ARES_FLAG_NOSEARCH | pycares.ARES_FLAG_EDNS  # the name as given; EDNS0 (RFC 6891)
    if not config.nameservers:
        flags |= pycares.ARES_FLAG_NO_DFLT_SVR  # no resolv.conf: say so, never ask 127.0.0.1 by default
    try:
        cares = pycares.Channel(flags=flags, **options)
        if config.nameservers:
            cares.servers = [hostport(host, port) for host, port in config.nameservers]
    except pycares.AresError as e:
        if not config.nameservers:
            raise DnsError("no system DNS resolver is configured (/etc/resolv.conf); give name servers") from None
        raise DnsError(f"cannot use the name servers {', '.join(map(str, config.nameservers))}: {e}") from None
    servers = list(cares.servers)
    return _Channel(cares, f"name server{'s' if len(servers) > 1 else ''} {', '.join(servers) or 'none'}")


_TIMED_OUT = -1  # our own deadline passed before c-ares answered


async def _until_answered(cares: Any, name: str, rdtype: str, timeout: float) -> tuple[int | None, Any]:
    """(c-ares status or None for success, the result) within timeout seconds from now, asking again when
    c-ares gives up sooner (its timeouts adapt to how fast the server answered before)."""
    import pycares

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    qtype = getattr(pycares, f"QUERY_TYPE_{rdtype}")
    while True:
        status, result = await _send(loop, cares, name, qtype, deadline)
        if status != pycares.errno.ARES_ETIMEOUT or deadline - loop.time() < _RESEND_AFTER:
            return status, result


async def _send(loop: asyncio.AbstractEventLoop, cares: Any, name: str, qtype: int,
                deadline: float) -> tuple[int | None, Any]:
    import pycares

    answered: asyncio.Future[tuple[int | None, Any]] = loop.create_future()

    def settle(status: int | None, result: Any) -> None:
        if not answered.done():
            answered.set_result((status, result))

    def callback(result: Any, status: int | None) -> None:  # on c-ares' own thread
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits for this answer any more
            loop.call_soon_threadsafe(settle, status, result)

    timer = loop.call_at(deadline, settle, _TIMED_OUT, None)
    try:
        try:
            cares.query(name, qtype, callback=callback)
        except pycares.AresError as e:  # refused before sending, e.g. a label over 63 octets
            settle(e.args[0] if e.args else pycares.errno.ARES_EBADNAME, None)
        return await answered
    finally:
        timer.cancel()


def _values(status: int | None, result: Any, rdtype: str, what: str, servers: str,
            config: ResolverConfig) -> list[Any]:
    import pycares

    if status is None:  # the records of rdtype; a CNAME chain before them (RFC 1034 §3.6.2) is left out
        return [_VALUES[rdtype](record.data) for record in result.answer if _TYPES.get(record.type) == rdtype]
    if status == pycares.errno.ARES_ENODATA:  # the name exists, without records of this type
        return []
    raise DnsError(_reason(status, what, servers, config))


def _reason(status: int, what: str, servers: str, config: ResolverConfig) -> str:
    import pycares

    code = "ARES_ETIMEOUT" if status == _TIMED_OUT else pycares.errno.errorcode.get(status, "")
    if code == "ARES_ETIMEOUT":
        return f"DNS timeout after {config.timeout:g}s for {what} ({servers})"
    if code in _RCODES:
        return f"{_RCODES[code]} for {what}"
    if code == "ARES_ECONNREFUSED":
        return f"no name server answered {what} ({servers}: connection refused)"
    if code in ("ARES_ECANCELLED", "ARES_EDESTRUCTION"):
        return f"DNS lookup of {what} cancelled: the run is ending"
    return f"DNS error for {what}: {pycares.errno.strerror(status).lower()}"


_TYPES = {1: "A", 28: "AAAA", 15: "MX", 16: "TXT", 12: "PTR", 52: "TLSA"}  # RFC 1035 §3.2.2, RFC 3596, RFC 6698

_VALUES: dict[str, Callable[[Any], Any]] = {
    "A": lambda d: d.addr,
    "AAAA": lambda d: d.addr,
    "MX": lambda d: (d.priority, d.exchange or "."),  # "" is the root: a null MX (RFC 7505)
    "TXT": lambda d: d.data,
    "PTR": lambda d: d.dname,
    "TLSA": lambda d: (d.cert_usage, d.selector, d.matching_type, d.cert_association_data),
}
