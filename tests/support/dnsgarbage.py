"""A DNS responder on 127.0.0.1 that answers what a test scripts, byte for byte: hostile answers for the fuzz suite.

    def respond(query: Query) -> Answer: ...
    with GarbageDns(respond) as server:
        server.nameservers        # ((host, port),) for ResolverConfig

`respond` gets each query (ID, name, type, transport) and returns an Answer: the UDP datagram to send (or None:
silence), how late to send it, and, when the client comes back over TCP (after TC), the raw bytes the TCP side
writes -- length prefix included, so a test can lie about the length -- or None to close at once.
The wire helpers below build messages with no check at all (labels over 63 octets, names over 255, pointer
loops), as RFC 1035 §4.1 lays them out.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tests.support.dnsserver import udp_and_tcp

TYPES = {"A": 1, "CNAME": 5, "MX": 15, "TXT": 16, "AAAA": 28}
QR, AA, TC, RD, RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080


@dataclass(frozen=True)
class Query:
    id: int
    name: str  # as asked, lower case, without the final dot
    qtype: int
    transport: str  # "udp" or "tcp"
    question: bytes  # the question section as sent (name, type, class)


@dataclass(frozen=True)
class Answer:
    udp: bytes | None = None  # None: no datagram
    delay: float = 0.0  # seconds before the datagram goes
    tcp: bytes | None = None  # raw bytes for the TCP side; None: close the connection without a word


def labels(name: str) -> bytes:
    """name in wire form, uncompressed, unchecked (RFC 1035 §3.1)."""
    out = b""
    for label in name.strip(".").split(".") if name.strip(".") else []:
        raw = label.encode("latin-1")
        out += bytes([len(raw) & 0xFF]) + raw
    return out + b"\x00"


def rr(owner: bytes, rtype: int, rdata: bytes, ttl: int = 300) -> bytes:
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def message(qid: int, flags: int, question: bytes, answers: list[bytes], counts: tuple[int, ...] | None = None,
            rcode: int = 0) -> bytes:
    """Header + question + answer records; `counts` overrides (qd, an, ns, ar) as written in the header."""
    qd, an, ns, ar = counts if counts is not None else (1 if question else 0, len(answers), 0, 0)
    return struct.pack("!HHHHHH", qid, flags | rcode, qd, an, ns, ar) + question + b"".join(answers)


def parse_query(wire: bytes, transport: str) -> Query | None:
    """The ID, first question name and type of a query; None when it is not one."""
    if len(wire) < 12:
        return None
    qid = struct.unpack("!H", wire[:2])[0]
    at, parts = 12, []
    while at < len(wire) and wire[at] != 0:
        size = wire[at]
        parts.append(wire[at + 1:at + 1 + size].decode("latin-1"))
        at += 1 + size
    end = at + 5
    if end > len(wire):
        return None
    qtype = struct.unpack("!H", wire[at + 1:at + 3])[0]
    return Query(qid, ".".join(parts).lower(), qtype, transport, wire[12:end])


class GarbageDns:
    """UDP and TCP on one port of 127.0.0.1, answering as `respond` says; a context manager."""

    def __init__(self, respond: Callable[[Query], Answer], host: str = "127.0.0.1"):
        self.respond = respond
        self.host = host
        self.port = 0
        self.queries: list[Query] = []
        self.peers: set[str] = set()  # where queries came from
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []

    @property
    def nameservers(self) -> tuple[tuple[str, int], ...]:
        return ((self.host, self.port),)

    def __enter__(self) -> GarbageDns:
        udp, tcp = udp_and_tcp(self.host)
        tcp.setblocking(False)
        self.port = udp.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, args=(udp, tcp), name="dns-garbage", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for timer in self._timers:
            timer.cancel()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.errors and exc[0] is None:
            raise RuntimeError("the garbage DNS server failed") from self.errors[0]

    def _serve(self, udp: socket.socket, tcp: socket.socket) -> None:
        with selectors.DefaultSelector() as selector, udp, tcp:
            selector.register(udp, selectors.EVENT_READ)
            selector.register(tcp, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.02):
                    try:
                        if key.fileobj is udp:
                            self._datagram(udp)
                        else:
                            connection, peer = tcp.accept()
                            self.peers.add(peer[0])
                            with connection:
                                self._serve_tcp(connection)
                    except BlockingIOError:
                        pass
                    except Exception as error:  # keep serving; the test sees it on exit
                        self.errors.append(error)

    def _datagram(self, udp: socket.socket) -> None:
        wire, peer = udp.recvfrom(65535)
        self.peers.add(peer[0])
        query = parse_query(wire, "udp")
        if query is None:
            return
        self.queries.append(query)
        answer = self.respond(query)
        if answer.udp is None:
            return
        if answer.delay > 0:
            timer = threading.Timer(answer.delay, _send_quietly, (udp, answer.udp, peer))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
        else:
            udp.sendto(answer.udp, peer)

    def _serve_tcp(self, connection: socket.socket) -> None:
        connection.setblocking(True)
        connection.settimeout(1.0)
        try:
            head = _recv_exactly(connection, 2)
            wire = head and _recv_exactly(connection, int.from_bytes(head, "big"))
            query = wire and parse_query(wire, "tcp")
            if not query:
                return
            self.queries.append(query)
            data = self.respond(query).tcp
            if data:
                connection.sendall(data)
        except OSError:
            return


def _send_quietly(udp: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
    with contextlib.suppress(OSError):  # closed meanwhile: the test is over
        udp.sendto(data, peer)


def _recv_exactly(connection: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data
