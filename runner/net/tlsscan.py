"""What a server offers over TLS: the versions it accepts, per version its cipher suites in its own order, and the
certificate chain it sends, the key exchange and the ServerHello's other answers. The one module that knows how a
scan is carried out (Python's ssl over the run's own connector, see docs/tls-audit.md for why not sslyze; the
facts Python's ssl does not expose come from hand-built hellos, runner/net/tlskx.py); callers get plain data.

Each version is tried on a connection of its own (RFC 8446 §4.1.2: a client offers one range); suites are found
by elimination (offer all, note the one chosen, offer the rest again), as testssl.sh and sslyze do. Connections
go through the given Connector, so the run's per-host limit (runner/run/hostslots.py) holds; a 421 greeting
(RFC 5321 §3.8) or a refused connection backs off and retries, and is reported as a rate limit, never as a
version or suite "not offered".
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from runner.errors import ConnectionLost
from runner.net import tlssuites
from runner.net.tls import peer_chain
from runner.net.tlshello import Flight, FlightReader, Hello, HelloError, client_hello
from runner.net.tlskx import Suites, probe
from runner.net.transport import Connector, Transport

__all__ = ["Offer", "RateLimited", "ScanTarget", "scan", "suite_facts"]

VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_PINNED = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1, "TLSv1.2": ssl.TLSVersion.TLSv1_2,
           "TLSv1.3": ssl.TLSVersion.TLSv1_3}
ALL_SUITES = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"  # SECLEVEL=0: OpenSSL 3 refuses TLS 1.0/1.1, RC4, 3DES otherwise
BACKOFF_FIRST, BACKOFF_MOST = 0.5, 8.0  # seconds between tries after a 421 or a refused connection
_FINAL = re.compile(rb"(?m)^(\d{3}) ")  # the last line of a reply (RFC 5321 §4.2.1)
MAX_REPLY = 64 * 1024


@dataclass(frozen=True)
class ScanTarget:
    host: str  # the address connected to
    port: int
    name: str  # SNI and the name the leaf must be valid for
    starttls: bool = True  # SMTP STARTTLS (RFC 3207); False: TLS from the first byte (RFC 8314)
    ehlo: str = "smtprun.invalid"
    cafile: str | None = None  # None: the system's trust store


@dataclass
class Offer:
    versions: dict[str, list[str]] = field(default_factory=dict)  # accepted versions → suites in server order
    not_tried: dict[str, str] = field(default_factory=dict)  # version → why it could not be tried from here
    server_order: dict[str, bool] = field(default_factory=dict)  # version → the server enforces its order
    suites: dict[str, dict[str, Any]] = field(default_factory=dict)  # OpenSSL name → its facts (id, kx, ...)
    chain: list[dict[str, Any]] = field(default_factory=list)
    verification: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)  # version → key-exchange groups accepted
    dh: dict[str, Any] = field(default_factory=dict)  # a DHE suite's prime: bits, well-known group name
    secure_renegotiation: bool | None = None  # RFC 5746; None: not tried (not_tried says why)
    compression: str | None = None  # "none" or "DEFLATE" (CRIME)
    ocsp_stapling: bool | None = None
    connections: int = 0
    rate_limited: int = 0  # 421s and refused connections backed off from
    seconds: float = 0.0


class RateLimited(Exception):
    """The server kept refusing connections (421 or refused) until the scan's time was up."""


class _Refused(Exception):
    """This one handshake was refused: the version or suites offered are not accepted."""


@dataclass
class _Scan:
    target: ScanTarget
    connect: Connector
    deadline: float
    offer: Offer


def _context(version: str | None, suites: str = ALL_SUITES, verify: bool = False,
             cafile: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(cafile=cafile) if cafile else ctx.load_default_certs()
    else:
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_ciphers(suites)  # ssl.SSLError when none of them can be used
    with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated in Python: asking for them is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = _PINNED[version] if version else ssl.TLSVersion.TLSv1
        ctx.maximum_version = _PINNED[version] if version else ssl.TLSVersion.MAXIMUM_SUPPORTED
    return ctx


async def _reply(conn: Transport, deadline: float) -> int:
    data = b""
    while not (found := _FINAL.search(data)) or not data.endswith(b"\n"):
        chunk = await conn.read(deadline)
        if not chunk or len(data) > MAX_REPLY:
            raise ConnectionLost("the server closed the connection before its reply ended")
        data += chunk
    return int(found[1])


async def _open(scan: _Scan, ctx: ssl.SSLContext | None) -> Transport:
    """A TLS connection with `ctx` (None: where TLS would start, for a hand-built hello); _Refused when the
    handshake is refused, RateLimited past the deadline."""
    delay, target = BACKOFF_FIRST, scan.target
    while True:
        try:
            return await _open_once(scan, ctx)
        except (ConnectionRefusedError, _Busy):
            scan.offer.rate_limited += 1
            if time.monotonic() + delay >= scan.deadline:
                raise RateLimited(f"{target.host}:{target.port} kept refusing connections (421 or refused)") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MOST)


class _Busy(Exception):
    """A 4xx greeting (421, RFC 5321 §3.8): try again later."""


async def _open_once(scan: _Scan, ctx: ssl.SSLContext | None) -> Transport:
    target = scan.target
    scan.offer.connections += 1
    tls = None if target.starttls else ctx
    try:
        conn = await scan.connect(target.host, target.port, scan.deadline, tls, target.name)
    except (ssl.SSLError, ConnectionResetError, EOFError) as exc:
        raise _Refused(str(exc)) from None
    try:
        if target.starttls:
            await _starttls(conn, scan, ctx)
    except BaseException:
        await conn.shut(False)
        raise
    return conn


async def _starttls(conn: Transport, scan: _Scan, ctx: ssl.SSLContext | None) -> None:
    if await _reply(conn, scan.deadline) // 100 == 4:
        raise _Busy
    for line, want in ((f"EHLO {scan.target.ehlo}", 250), ("STARTTLS", 220)):
        await conn.write(line.encode() + b"\r\n", scan.deadline)
        code = await _reply(conn, scan.deadline)
        if code // 100 == 4:
            raise _Busy
        if code != want:
            raise ConnectionLost(f"{line} was answered {code}: no STARTTLS to scan")
    if ctx is None:
        return
    try:
        await conn.start_tls(ctx, scan.target.name, scan.deadline)
    except (ssl.SSLError, ConnectionLost, ConnectionResetError, EOFError) as exc:
        raise _Refused(str(exc)) from None


async def _handshake(scan: _Scan, ctx: ssl.SSLContext) -> tuple[str, str] | None:
    """(version, suite) the server chose for this offer, or None when it refused it."""
    try:
        conn = await _open(scan, ctx)
    except _Refused:
        return None
    try:
        tls = conn.tls_object
        cipher = tls.cipher() if tls else None
        return (tls.version() or "", cipher[0]) if tls and cipher else None
    finally:
        await conn.shut(False)


def _suite_names(version: str) -> list[str]:
    """The suites the local OpenSSL can offer for `version` (≤ 1.2), in its default order of preference."""
    ctx = _context(version)
    return [c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3" and _usable(c, version)]


def _usable(cipher: dict[str, Any], version: str) -> bool:
    return version == "TLSv1.2" or cipher["protocol"] != "TLSv1.2"  # TLS 1.2-only suites (GCM, SHA-256 MACs)


async def _scan_version(scan: _Scan, version: str) -> None:
    if version == "TLSv1.3":
        return await _scan_tls13(scan)
    left = _suite_names(version)
    order: list[str] = []
    while left:
        got = await _handshake(scan, _context(version, ":".join(left) + ":@SECLEVEL=0"))
        if got is None or got[1] not in left:
            break
        order.append(got[1])
        left.remove(got[1])
    if len(order) > 1:
        again = await _handshake(scan, _context(version, ":".join(reversed(order)) + ":@SECLEVEL=0"))
        scan.offer.server_order[version] = again is not None and again[1] == order[0]
    order += await _scan_legacy(scan, version)
    if order:
        scan.offer.versions[version] = order
    return None


async def _scan_legacy(scan: _Scan, version: str) -> list[str]:
    """The suites the local OpenSSL lacks (RC4, 3DES, EXPORT...), from hand-built hellos, listed after the ones it
    has (which of the two sets the server prefers is not asked)."""
    local = {c["name"] for c in _context(None).get_ciphers()}
    try:
        found = await tlssuites.legacy(lambda hello, dhe: _exchange(scan, hello, dhe), version, scan.target.name,
                                       local)
    except HelloError as exc:
        scan.offer.not_tried[f"{version} suites the local OpenSSL lacks"] = str(exc)
        return []
    if found.server_order is not None:
        scan.offer.server_order.setdefault(version, found.server_order)
    return [tlssuites.LEGACY[code]["name"] for code in found.suites]


async def _scan_tls13(scan: _Scan) -> None:
    """Every TLS 1.3 suite, from hand-built hellos (runner/net/tlssuites.py: Python 3.11's ssl cannot choose them).
    A server that refuses those but completes Python's own handshake still has its TLS 1.3 said, with one suite."""
    why = "the server refused a ClientHello without a key share (RFC 8446 §4.2.8)"
    try:
        found = await tlssuites.tls13(lambda hello, dhe: _exchange(scan, hello, dhe), scan.target.name)
    except HelloError as exc:
        found, why = tlssuites.SuiteOrder(), str(exc)
    if found.suites:
        scan.offer.versions["TLSv1.3"] = [tlssuites.TLS13_NAMES[code] for code in found.suites]
        if found.server_order is not None:
            scan.offer.server_order["TLSv1.3"] = found.server_order
        return
    got = await _handshake(scan, _context("TLSv1.3")) if ssl.HAS_TLSv1_3 else None
    if got is not None:
        scan.offer.versions["TLSv1.3"] = [got[1]]
        scan.offer.not_tried["TLSv1.3 suites"] = f"{why}; only the suite of a full handshake is known"


async def _exchange(scan: _Scan, hello: Hello, dhe: bool) -> Flight | None:
    """One hand-built hello on a connection of its own; the server's first flight, None when it hung up."""
    conn = await _open(scan, None)
    try:
        await conn.write(client_hello(hello), scan.deadline)
        reader = FlightReader(dhe=dhe)
        while chunk := await conn.read(scan.deadline):
            if (flight := reader.feed(chunk)) is not None:
                return flight
        return None
    except (ConnectionLost, ConnectionResetError, EOFError):
        return None
    finally:
        await conn.shut(False)


async def _scan_key_exchange(scan: _Scan) -> None:
    ciphers = [c for c in _context(None).get_ciphers() if c["protocol"] != "TLSv1.3"]
    codes = {kind: tuple(c["id"] & 0xFFFF for c in ciphers if c["kea"] == kind) for kind in ("kx-ecdhe", "kx-dhe")}
    suites = Suites(tuple(c["id"] & 0xFFFF for c in ciphers), codes["kx-ecdhe"], codes["kx-dhe"])
    found = await probe(lambda hello, dhe: _exchange(scan, hello, dhe), scan.target.name, suites)
    offer = scan.offer
    offer.groups, offer.dh = found.groups, found.dh
    offer.secure_renegotiation, offer.compression = found.secure_renegotiation, found.compression
    offer.ocsp_stapling = found.ocsp_stapling
    offer.not_tried.update(found.not_tried)


async def _scan_chain(scan: _Scan) -> None:
    """The chain as sent, from a handshake the server chooses freely; then a verifying one for the verdict."""
    from runner.net.tlschain import chain_facts, verify_outcome  # cryptography: loaded when a scan runs, not at start

    try:
        conn = await _open(scan, _context(None))
    except _Refused as exc:
        scan.offer.verification = {"error": f"no TLS handshake succeeded: {exc}"}
        return
    try:
        ders = peer_chain(conn.tls_object)  # type: ignore[arg-type]
    finally:
        await conn.shut(False)
    scan.offer.chain = chain_facts(ders)
    verified = _context(None, verify=True, cafile=scan.target.cafile)
    verified.check_hostname = True
    try:
        conn = await _open(scan, verified)
        await conn.shut(False)
        error: BaseException | None = None
    except _Refused as exc:
        error = exc.__context__ or exc
    scan.offer.verification = verify_outcome(error, ders, scan.target)


async def scan(target: ScanTarget, connect: Connector, deadline: float) -> Offer:
    """The whole offer. RateLimited when the server kept refusing; ConnectionLost when it offers no STARTTLS."""
    offer = Offer()
    t0 = time.monotonic()
    work = _Scan(target, connect, deadline, offer)
    offer.not_tried["SSLv3"] = "the local OpenSSL was built without SSLv3" if not ssl.HAS_SSLv3 else "not tried"
    await _all([*(_scan_version(work, v) for v in VERSIONS), _scan_chain(work), _scan_key_exchange(work)])
    offer.versions = {v: offer.versions[v] for v in VERSIONS if v in offer.versions}
    offer.groups = {v: offer.groups[v] for v in VERSIONS if v in offer.groups}
    offer.suites = suite_facts(name for suites in offer.versions.values() for name in suites)
    offer.seconds = round(time.monotonic() - t0, 3)
    return offer


async def _all(coroutines: list[Any]) -> None:
    """Run side by side; when one fails the others are cancelled, so no connection outlives the scan."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def suite_facts(names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each suite's facts (IANA code, key exchange, cipher...) by OpenSSL name: from the local OpenSSL's table, else
    from the hand-built hellos' (runner/net/tlssuites.py)."""
    known = {**tlssuites.HAND_BUILT_FACTS, **{c["name"]: c for c in _context(None).get_ciphers()}}
    return {name: _facts(known.get(name, {})) for name in sorted(set(names))}


def _facts(c: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"0x{c.get('id', 0) & 0xFFFF:04X}", "kx": c.get("kea"), "auth": c.get("auth"),
            "cipher": c.get("symmetric"), "aead": c.get("aead"), "bits": c.get("strength_bits"),
            "description": " ".join(str(c.get("description", "")).split())}
