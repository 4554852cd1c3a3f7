"""Connecting a case: to its target host, or along its MX route (RFC 5321 §5.1: the hosts in order of
preference, the next one when one does not answer), from a source address when the plan gives one, with TLS
from the first byte for `tls: implicit` (RFC 8314). Every failure is said in a mail admin's words."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from runner.errors import ConnectionLost, StepFailed
from runner.net import tls as tlsinfo
from runner.net.address import ip_version
from runner.net.transport import Connector, SourceUnusable, Transport, hostport, open_unix_connection
from runner.plan.types import Plan, Target
from runner.results import SEND, CaseResult

if TYPE_CHECKING:
    from runner.net.tlsclient import Handshake
    from runner.smtp.proxy import ProxyHeader

__all__ = ["Hop", "connect"]


@dataclass(frozen=True)
class Hop:
    """One place to connect: a host name (for TLS and reports) and an address; MX preference if any."""

    name: str
    address: str
    preference: int = 0


class Connecting(Protocol):
    """What connecting needs of a running case (runner.run.case.RunningCase)."""

    plan: Plan
    target: Target
    route: tuple[Hop, ...] | None
    result: CaseResult
    connector: Connector
    conn: Transport | None
    server_host: str

    def text(self, value: str) -> str: ...
    def note(self, text: str) -> None: ...
    def record(self, direction: str, data: bytes) -> None: ...
    def port(self) -> int: ...
    def host(self) -> str: ...
    def source(self) -> str | None: ...
    def close(self) -> None: ...


async def connect(case: Connecting) -> None:
    """Connect to the target host (or UNIX-domain socket), or along the route, falling back to the next hop on
    failure; then send the PROXY header if the plan gives one."""
    t = case.target
    if t.unix is not None:
        await _connect_unix(case, case.text(t.unix))
    else:
        await _connect_host(case, tls_first=t.proxy is None)
    if t.proxy is not None:
        await _send_proxy(case, t.proxy, time.monotonic() + t.timeout)
        if t.tls == "implicit":  # a load balancer's header comes before the handshake it passes on
            await _handshake(case, time.monotonic() + t.timeout)


async def _connect_unix(case: Connecting, path: str) -> None:
    case.note(f"connecting to unix:{path}")
    try:
        case.conn = await open_unix_connection(path, time.monotonic() + case.target.timeout)
    except (asyncio.TimeoutError, OSError) as exc:
        raise StepFailed(_failure(exc, f"unix:{path}", case.target.timeout)) from None
    case.result.peer = case.conn.peer
    case.note(f"connected to {case.conn.peer}")


async def _connect_host(case: Connecting, tls_first: bool) -> None:
    t = case.target
    source = case.source()
    tls = _implicit_tls(case) if tls_first else None
    port = case.port()
    hops = case.route if case.route is not None else (Hop(host := case.host(), host),)
    if case.route is None and t.host:  # a template (`host: "{{ h }}"`) as rendered for this case
        case.result.target = hostport(hops[0].address, port)
    if not hops:
        raise StepFailed("no address to connect to")
    hop, failures = await _first_that_answers(case, hops, port, tls, source)
    if case.conn is None:
        raise StepFailed(failures[0] if len(failures) == 1 else "no MX host answered: " + "; ".join(failures))
    case.result.notes.extend(f"skipped {f}" for f in failures)
    if case.route is not None:
        case.result.notes.append(f"connected to MX {hop.name} (preference {hop.preference}) at {case.conn.peer}")
    _connected(case, source, tls and tls.named(_tls_name(case, hop.name)))


async def _send_proxy(case: Connecting, header: ProxyHeader, deadline: float) -> None:
    """The PROXY header, first of all bytes (HAProxy's spec §2: before any data of the connection)."""
    from runner.smtp import proxy

    assert case.conn is not None
    data = proxy.encode(header)
    if header.version == 2:
        case.note(proxy.describe(header))
    else:
        case.record(SEND, data)
    try:
        await case.conn.write(data, deadline)
    except (asyncio.TimeoutError, ConnectionLost, OSError):
        raise StepFailed(f"the connection to {case.conn.peer} closed before the PROXY header was sent") from None


def _implicit_tls(case: Connecting) -> Handshake | None:
    """The handshake `tls: implicit` asks for, with the target's client options; its name is set per host."""
    t = case.target
    if t.tls != "implicit":
        return None
    from runner.run import tlsclient  # the TLS client's options and context: only a target of implicit TLS

    given = tlsclient.target_options(t)
    handshake = tlsclient.prepare(case.text, given, "", os.path.dirname(case.plan.file))
    for note in tlsclient.offered(given, handshake):
        case.note(note)
    return handshake


def _context_and_sni(tls: Handshake | None, name: str) -> tuple[ssl.SSLContext | None, str]:
    """What a connector is given for TLS from the first byte: the context, and the SNI name ("" for none)."""
    if tls is None:
        return None, name
    return tls.context, "" if tls.sni is None else tls.sni


def _tls_name(case: Connecting, host: str) -> str:
    """The name the certificate is checked against: the target's server_name, else the host connected to."""
    return case.text(case.target.server_name) if case.target.server_name else host


async def _first_that_answers(case: Connecting, hops: tuple[Hop, ...], port: int, tls: Handshake | None,
                              source: str | None) -> tuple[Hop, list[str]]:
    """The hop connected to (case.conn set), and why each one before it failed."""
    t = case.target
    bind: dict[str, Any] = {"source": source} if source else {}  # a connector is given `source` only then
    failures: list[str] = []
    for hop in hops:
        where = f"{hop.name} [{hop.address}]:{port}" if hop.name != hop.address else hostport(hop.address, port)
        case.note(f"connecting to {where}" + (" (implicit TLS)" if tls else ""))
        case.server_host = hop.name
        name = _tls_name(case, hop.name)
        context, sni = _context_and_sni(tls and tls.named(name), name)
        why = _family_mismatch(source, hop.address, where)
        try:
            if why is None:
                case.conn = await case.connector(hop.address, port, time.monotonic() + t.timeout, context, sni,
                                                 **bind)
                return hop, failures
        except (asyncio.TimeoutError, OSError, ValueError) as exc:  # UnicodeError is a ValueError
            why = _failure(exc, where, t.timeout, source)
        failures.append(why)
        case.note(why)
    return hops[-1], failures


async def _handshake(case: Connecting, deadline: float) -> None:
    """TLS for `tls: implicit` once the PROXY header is out (RFC 8314 §3: TLS from the server's first byte)."""
    assert case.conn is not None
    tls = _implicit_tls(case)
    assert tls is not None
    tls = tls.named(_tls_name(case, case.server_host))
    try:
        await case.conn.start_tls(tls.context, tls.sni, deadline)
    except (asyncio.TimeoutError, OSError, ConnectionLost) as exc:  # ssl.SSLError is an OSError
        why = str(exc) if isinstance(exc, ConnectionLost) else _failure(exc, case.conn.peer, case.target.timeout)
        raise StepFailed(f"TLS after the PROXY header: {why}") from None
    _tls_facts(case, tls)


def _connected(case: Connecting, source: str | None, tls: Handshake | None) -> None:
    assert case.conn is not None
    case.result.peer = case.conn.peer
    if source:
        case.result.source = case.conn.local or source
        case.note(f"connected from {case.result.source} to {case.conn.peer}")
    else:
        case.note(f"connected to {case.conn.peer}")
    if tls is not None:
        _tls_facts(case, tls)


def _tls_facts(case: Connecting, tls: Handshake) -> None:
    """The implicit TLS session's facts, with what the client sent; the certificate's name checked here when the
    plan chose the SNI."""
    from runner.run import tlsclient

    assert case.conn is not None
    case.result.tls = tlsinfo.session_facts(case.conn.tls_object, case.target.verify)
    tlsclient.after_handshake(case.result.tls, tls, case.close)
    case.note(tlsinfo.describe_session(case.result.tls))


def _family_mismatch(source: str | None, address: str, where: str) -> str | None:
    """Why `address` cannot be reached from `source` (an IPv4 source, an IPv6 address), or None."""
    theirs, ours = ip_version(address), ip_version(source) if source else None
    if ours is None or theirs is None or theirs == ours:
        return None
    return (f"cannot connect to {where} from source address {source}: "
            f"an IPv{ours} source cannot reach an IPv{theirs} address")


def _failure(exc: BaseException, where: str, timeout: float, source: str | None = None) -> str:
    """Why a connection attempt failed, in a mail admin's words."""
    if isinstance(exc, SourceUnusable):
        return f"cannot use source address {source}: {exc.strerror}"
    if source and isinstance(exc, socket.gaierror):  # the host has no address of the source's family
        return f"cannot connect to {where}: {exc.strerror or exc} (IPv{ip_version(source)} addresses only, " \
               f"to match source address {source})"
    if isinstance(exc, asyncio.TimeoutError):
        return f"connection to {where}{_from(source)} timed out after {timeout:g}s"
    if isinstance(exc, ssl.SSLError):
        hint = ("; is this a STARTTLS port? use a starttls: step instead of tls: implicit"
                if exc.reason == tlsinfo.PLAINTEXT else "")
        return f"{where}: {tlsinfo.describe_failure(exc)}{hint}"
    if isinstance(exc, ValueError):  # e.g. a label over 63 characters
        return f"cannot connect to {where}: not a valid host name ({exc})"
    assert isinstance(exc, OSError)
    # errno's own words where there is one ("Connection refused"), else the resolver's
    detail = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else (exc.strerror or str(exc))
    return f"cannot connect to {where}{_from(source)}: {detail}"


def _from(source: str | None) -> str:
    """A refusal or silence may be the server's allow-list: say which source address it saw."""
    return f" from source address {source}" if source else ""
