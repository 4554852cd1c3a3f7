"""Asking name servers: one run's DNS client over c-ares (pycares), shared by every lookup the run makes.

A `Lookups` belongs to one run (an smtprun invocation, one exporter probe). It keeps a c-ares channel per
resolver configuration; asks at most `in_flight` queries at once, however many sessions want answers (500
sessions must not fire 1,500 datagrams at one name server and lose them to its full socket buffer); and asks
each name and type once: every target whose mail host is mx.example.com shares one answer, or one failure.
The timeout counts from the moment a query is sent, not from when it joined the queue.

c-ares does the wire format, retries and the fall-back to TCP for truncated answers (RFC 7766 §5) in C: a query
costs about a third of the CPU it took through dnspython's resolver (bench/README.md has the figures). pycares
is imported when the first channel is made, so importing this module stays cheap. Every failure is a
DnsError whose message names the query: "NXDOMAIN for example.test MX", "DNS timeout after 2s for
mx1.example.test AAAA (name server 127.0.0.1:5353)".
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner.errors import SmtprunError
from runner.net.address import check_port, hostport

if TYPE_CHECKING:
    from runner.net.cares import Channel

__all__ = ["FAMILIES", "MAX_IN_FLIGHT", "DnsError", "Lookups", "ResolverConfig"]

FAMILIES = {"ipv4": "A", "ipv6": "AAAA"}
MAX_IN_FLIGHT = 64  # queries one run has outstanding at once, whatever --jobs says
PER_TRY = 2.0  # seconds a name server gets per try at most (dnspython's and glibc's default), within the timeout
_RESEND_AFTER = 0.05  # c-ares gave up early (its adaptive timeouts) and this much time is left: ask again
# c-ares statuses for a name server's answer code (RFC 1035 §4.1.1, RFC 6895 §2.3): named as the server said it
_RCODES = {"ARES_ENOTFOUND": "NXDOMAIN", "ARES_ESERVFAIL": "SERVFAIL", "ARES_EREFUSED": "REFUSED",
           "ARES_ENOTIMP": "NOTIMP", "ARES_EFORMERR": "FORMERR"}


class DnsError(SmtprunError):
    """A lookup failed; the message names the query, e.g. "SERVFAIL for example.test MX". `rcode` is the
    answer code a name server gave ("NXDOMAIN", "SERVFAIL"...), None when none answered or another thing failed."""

    def __init__(self, message: str, rcode: str | None = None) -> None:
        super().__init__(message)
        self.rcode = rcode

    @property
    def nxdomain(self) -> bool:
        """The name does not exist (RFC 1035 §4.1.1, RCODE 3): a record there is absent, not merely unknown."""
        return self.rcode == "NXDOMAIN"


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


_Key = tuple[str, str, tuple[tuple[str, int], ...], float]  # name (lower case, no final dot), type, servers, timeout


_Outcome = tuple[Any, ...] | DnsError  # a lookup's values, or why it failed


class _Lookup:
    """One name and type being asked in a run, and its waiters. Once its outcome is in, the run keeps only that
    (a tuple of strings and numbers, or the error): the collector need not walk 30,000 of these in a fleet."""

    __slots__ = ("config", "deadline", "key", "name", "outcome", "rdtype", "waiters")

    def __init__(self, name: str, rdtype: str, config: ResolverConfig, key: _Key) -> None:
        self.name, self.rdtype, self.config, self.key = name, rdtype, config, key
        self.deadline = 0.0
        self.outcome: _Outcome | None = None
        self.waiters: list[asyncio.Future[tuple[Any, ...]]] = []


class Lookups:
    """One run's DNS: a channel per configuration, at most `in_flight` queries at once, each name/type asked once.

    Callbacks, not a task per query: the run may ask 30,000 of them. Close it when the run ends (`async with`,
    or close()): what is still being asked, or waits to be, fails as cancelled.
    """

    def __init__(self, in_flight: int = MAX_IN_FLIGHT) -> None:
        if in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, not {in_flight}")
        self.in_flight = in_flight
        self.asked = 0  # queries sent to name servers, after de-duplication
        self.peak = 0  # the most queries that were outstanding at once
        self._busy = 0
        self._queue: deque[_Lookup] = deque()  # waiting for one of the in_flight places
        self._pumping = False
        self._channels: dict[tuple[tuple[tuple[str, int], ...], float], tuple[Channel, str]] = {}
        self._lookups: dict[_Key, _Lookup | _Outcome] = {}  # under way, or its outcome once it is in
        self._closed = False

    async def __aenter__(self) -> Lookups:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()

    async def query(self, name: str, rdtype: str, config: ResolverConfig) -> list[Any]:
        """The answer's values of rdtype: addresses (A, AAAA), (preference, exchange) (MX), bytes (TXT, the
        strings joined as RFC 7208 §3.3 says), names (PTR), (usage, selector, mtype, data) (TLSA); [] when the
        name exists without such records. Failures are DnsError. A lookup already made or under way is shared."""
        return list(await self.answer(name, rdtype, config))

    def answer(self, name: str, rdtype: str, config: ResolverConfig) -> asyncio.Future[tuple[Any, ...]]:
        """This waiter's future for name/rdtype's values, the lookup started unless it was; cancelling the
        future gives up this waiter only."""
        lookup = self._lookup(name, rdtype, config)
        waiter: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        if isinstance(lookup, _Lookup):
            lookup.waiters.append(waiter)
        else:
            _deliver(waiter, lookup)
        return waiter

    def start(self, name: str, rdtype: str, config: ResolverConfig) -> None:
        """Start the lookup of name/rdtype (unless it was), for an answer() that will come later."""
        self._lookup(name, rdtype, config)

    def _lookup(self, name: str, rdtype: str, config: ResolverConfig) -> _Lookup | _Outcome:
        """The lookup of name/rdtype under way (started now unless it was), or its outcome once it is in."""
        if self._closed:
            raise DnsError(f"DNS lookup of {shown(name)} {rdtype} after the run ended")
        key = (shown(name).lower(), rdtype, config.nameservers, config.timeout)
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = self._lookups[key] = _Lookup(name, rdtype, config, key)
            self._queue.append(lookup)
            self._pump()
            return self._lookups[key]  # a lookup that failed at once (no name server) is settled already
        return lookup

    def _pump(self) -> None:
        """Send what waits while places are free (not re-entered: a query that fails at once loops here)."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._queue and self._busy < self.in_flight and not self._closed:
                self._start(self._queue.popleft())
        finally:
            self._pumping = False

    def _start(self, lookup: _Lookup) -> None:
        self._busy += 1
        self.peak = max(self.peak, self._busy)
        self.asked += 1
        try:
            channel, servers = self._channel(lookup.config)
        except DnsError as e:
            self._done(lookup, e)
            return
        lookup.deadline = channel.loop.time() + lookup.config.timeout  # from the sending, not the queueing
        try:
            self._send(lookup, channel, servers)
        except Exception as e:  # maybe called from C (a queued lookup started by another's answer): say it here
            self._done(lookup, DnsError(f"internal error in the DNS lookup of {shown(lookup.name)} {lookup.rdtype}: "
                                        f"{type(e).__name__}: {e}"))

    def _send(self, lookup: _Lookup, channel: Channel, servers: str) -> None:
        import pycares

        def answered(status: int | None, result: Any) -> None:  # called from C: nothing may escape
            try:
                if status is None:  # the common case first: an answer with records
                    outcome: _Outcome = _records(result, lookup.rdtype)
                elif (status == pycares.errno.ARES_ETIMEOUT and not self._closed
                      and lookup.deadline - channel.loop.time() >= _RESEND_AFTER):
                    self._send(lookup, channel, servers)  # c-ares gave up sooner (its timeouts adapt): ask again
                    return
                else:
                    outcome = _failed(status, lookup, servers)
            except DnsError as e:
                outcome = e
            except Exception as e:  # it would vanish in C and leave the waiters hanging: fail the lookup by name
                outcome = DnsError(f"internal error in the DNS lookup of {shown(lookup.name)} {lookup.rdtype}: "
                                   f"{type(e).__name__}: {e}")
            self._done(lookup, outcome)

        channel.send(lookup.name, _QUERY_TYPES[lookup.rdtype], lookup.deadline, answered)

    def _done(self, lookup: _Lookup, outcome: _Outcome) -> None:
        if lookup.outcome is not None:  # already settled (an internal error first, its answer after)
            return
        if isinstance(outcome, DnsError):
            outcome.__traceback__ = None  # kept for the run: not the frames it was raised in
        lookup.outcome = outcome
        self._lookups[lookup.key] = outcome
        waiters, lookup.waiters = lookup.waiters, []
        for waiter in waiters:
            _deliver(waiter, outcome)
        self._busy -= 1
        self._pump()

    def _channel(self, config: ResolverConfig) -> tuple[Channel, str]:
        key = (config.nameservers, config.timeout)
        found = self._channels.get(key)
        if found is None:
            found = self._channels[key] = _open(config)
        return found

    def close(self) -> None:
        """Cancel what is still being asked and what waits to be; queries after this are refused."""
        self._closed = True
        for channel, _ in self._channels.values():
            channel.close()  # each query still out is called back with ECANCELLED
        self._channels.clear()
        while self._queue:
            lookup = self._queue.popleft()
            self._busy += 1  # _done counts it out again
            self._done(lookup, DnsError(f"DNS lookup of {shown(lookup.name)} {lookup.rdtype} cancelled: "
                                        "the run is ending"))


def _deliver(waiter: asyncio.Future[tuple[Any, ...]], outcome: _Outcome) -> None:
    if waiter.done():  # its waiter gave up
        return
    if isinstance(outcome, DnsError):
        # one exception each: tracebacks must not pile up on one
        waiter.set_exception(DnsError(str(outcome), outcome.rcode))
        waiter.exception()  # seen, even if its waiter is cancelled before it looks
    else:
        waiter.set_result(outcome)


def _open(config: ResolverConfig) -> tuple[Channel, str]:
    """A channel for config on the running loop, and its name servers as messages show them."""
    import pycares

    from runner.net.cares import Channel  # the c-ares channel: only a run that looks a name up

    per_try = min(PER_TRY, config.timeout)
    tries = min(8, math.ceil(config.timeout / per_try) + 1)
    try:
        channel = Channel(asyncio.get_running_loop(), [hostport(h, p) for h, p in config.nameservers], per_try, tries)
    except pycares.AresError as e:
        if not config.nameservers:
            raise DnsError("no system DNS resolver is configured (/etc/resolv.conf); give name servers") from None
        raise DnsError(f"cannot use the name servers {', '.join(map(str, config.nameservers))}: {e}") from None
    servers = channel.servers
    return channel, f"name server{'s' if len(servers) > 1 else ''} {', '.join(servers) or 'none'}"


def _records(result: Any, rdtype: str) -> tuple[Any, ...]:
    """The values of the answer's records of rdtype; a CNAME chain before them (RFC 1034 §3.6.2) is left out."""
    qtype, value = _QUERY_TYPES[rdtype], _VALUES[rdtype]
    return tuple(value(record.data) for record in result.answer if record.type == qtype)


def _failed(status: int, lookup: _Lookup, servers: str) -> tuple[Any, ...]:
    """No records: () when the name exists without records of its type; else the DnsError, raised."""
    import pycares

    if status == pycares.errno.ARES_ENODATA:
        return ()
    what = f"{shown(lookup.name)} {lookup.rdtype}"
    raise DnsError(_reason(status, what, servers, lookup.config), _RCODES.get(_code(status)))


def _code(status: int) -> str:
    """c-ares' name for a status ("ARES_ENOTFOUND"), "ARES_ETIMEOUT" for a query the deadline ended."""
    import pycares

    from runner.net.cares import TIMED_OUT

    return "ARES_ETIMEOUT" if status == TIMED_OUT else pycares.errno.errorcode.get(status, "")


def _reason(status: int, what: str, servers: str, config: ResolverConfig) -> str:
    import pycares

    code = _code(status)
    if code == "ARES_ETIMEOUT":
        return f"DNS timeout after {config.timeout:g}s for {what} ({servers})"
    if code in _RCODES:
        return f"{_RCODES[code]} for {what}"
    if code == "ARES_ECONNREFUSED":
        return f"no name server answered {what} ({servers}: connection refused)"
    if code in ("ARES_ECANCELLED", "ARES_EDESTRUCTION"):
        return f"DNS lookup of {what} cancelled: the run is ending"
    return f"DNS error for {what}: {pycares.errno.strerror(status).lower()}"


_QUERY_TYPES = {"A": 1, "AAAA": 28, "MX": 15, "TXT": 16, "PTR": 12, "TLSA": 52}  # RFC 1035 §3.2.2, RFC 3596, RFC 6698

_VALUES: dict[str, Callable[[Any], Any]] = {
    "A": lambda d: d.addr,
    "AAAA": lambda d: d.addr,
    "MX": lambda d: (d.priority, d.exchange or "."),  # "" is the root: a null MX (RFC 7505)
    "TXT": lambda d: d.data,
    "PTR": lambda d: d.dname,
    "TLSA": lambda d: (d.cert_usage, d.selector, d.matching_type, d.cert_association_data),
}
