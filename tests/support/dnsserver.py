"""A small authoritative DNS responder on 127.0.0.1 for tests, over UDP and TCP, in a thread.

    with DnsServer({"example.test.": {"MX": ["10 mx1.example.test."]},
                    "mx1.example.test.": {"A": ["127.0.0.1"]}}) as server:
        server.nameservers        # ((host, port),) for ResolverConfig
        server.servfail.add("example.test.")   # also: nxdomain, silent (never answers), truncate (TC over UDP)

A name in the zone without the asked type gets an empty NOERROR answer (NODATA); a name neither in the zone nor
above a name in it gets NXDOMAIN. Answers too big for 512 octets over UDP (RFC 1035 §4.2.1; no EDNS here) are
truncated with TC set, so the client retries over TCP (RFC 7766 §5).
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Iterable

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

UDP_LIMIT = 512  # RFC 1035 §4.2.1, for queries without EDNS
TTL = 300

Zone = dict[str, dict[str, list[str]]]


def _key(name: str) -> str:
    name = name.lower()
    return name if name.endswith(".") else name + "."


def udp_and_tcp(host: str) -> tuple[socket.socket, socket.socket]:
    """A UDP socket and a listening TCP socket on one free port of host, as a name server answers on both."""
    for _ in range(20):  # the free UDP port must also be free for TCP
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((host, 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind(udp.getsockname())
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen(16)
        return udp, tcp
    raise OSError(f"no port on {host} free for both UDP and TCP")


class DnsServer:
    """Answers from a zone dict {name: {type: [rdata text, ...]}}; a context manager."""

    def __init__(self, zone: Zone | None = None, host: str = "127.0.0.1"):
        self.host = host
        self.port = 0
        self.rrsets: dict[tuple[str, str], dns.rrset.RRset] = {}
        self.servfail: set[str] = set()   # names answered SERVFAIL
        self.nxdomain: set[str] = set()   # names answered NXDOMAIN whatever the zone says
        self.silent: set[str] = set()     # names never answered: the client times out
        self.silent_types: set[tuple[str, str]] = set()  # (name, type) never answered, e.g. only the AAAA query
        self.truncate: set[str] = set()   # names always answered with TC over UDP
        self.queries: list[tuple[str, str, str]] = []  # (name, type, "udp" or "tcp") in arrival order
        self.errors: list[BaseException] = []  # raised while answering; re-raised on exit so no test hides them
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for name, records in (zone or {}).items():
            for rdtype, texts in records.items():
                self.set(name, rdtype, texts)

    def set(self, name: str, rdtype: str, texts: Iterable[str]) -> None:
        """Replace name's records of rdtype (an empty list removes them); bad rdata fails here, not later."""
        key = (_key(name), rdtype.upper())
        texts = list(texts)
        if not texts:
            self.rrsets.pop(key, None)
            return
        rrset = dns.rrset.from_text_list(key[0], TTL, "IN", key[1], texts, origin=dns.name.root, relativize=False)
        self.rrsets[key] = rrset

    @property
    def nameservers(self) -> tuple[tuple[str, int], ...]:
        return ((self.host, self.port),)

    def __enter__(self) -> DnsServer:
        udp, tcp = udp_and_tcp(self.host)
        self.port = udp.getsockname()[1]
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, args=(udp, tcp), name="dns-test-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.errors and exc[0] is None:
            raise RuntimeError("the test DNS server failed to answer") from self.errors[0]

    def _serve(self, udp: socket.socket, tcp: socket.socket) -> None:
        with selectors.DefaultSelector() as selector, udp, tcp:
            selector.register(udp, selectors.EVENT_READ)
            selector.register(tcp, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.05):
                    try:
                        if key.fileobj is udp:
                            wire, peer = udp.recvfrom(65535)
                            reply = self.answer(wire, "udp")
                            if reply is not None:
                                udp.sendto(reply, peer)
                        else:
                            connection, _ = tcp.accept()
                            with connection:
                                self._serve_tcp(connection)
                    except Exception as error:  # keep serving; the test sees it on exit
                        self.errors.append(error)

    def _serve_tcp(self, connection: socket.socket) -> None:
        connection.settimeout(2.0)
        try:
            while True:  # RFC 1035 §4.2.2: each message is prefixed by its two-octet length
                head = _recv_exactly(connection, 2)
                if head is None:
                    return
                wire = _recv_exactly(connection, int.from_bytes(head, "big"))
                if wire is None:
                    return
                reply = self.answer(wire, "tcp")
                if reply is None:
                    return
                connection.sendall(len(reply).to_bytes(2, "big") + reply)
        except OSError:
            return

    def answer(self, wire: bytes, transport: str = "udp") -> bytes | None:
        """The response to one query message, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        name, rdtype = _key(question.name.to_text()), dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype, transport))
        if _listed(name, self.silent) or (name, rdtype) in {(_key(n), t.upper()) for n, t in self.silent_types}:
            return None
        if _listed(name, self.servfail):
            response.set_rcode(dns.rcode.SERVFAIL)
        elif _listed(name, self.nxdomain) or not self._exists(name):
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            response.answer.extend(self._lookup(name, rdtype))
        if transport == "udp" and _listed(name, self.truncate):
            response.answer.clear()
            response.flags |= dns.flags.TC
        limit = UDP_LIMIT if transport == "udp" else 65535
        return response.to_wire(max_size=limit, prefer_truncation=True)

    def _lookup(self, name: str, rdtype: str) -> list[dns.rrset.RRset]:
        """The rrsets answering name/rdtype, following CNAMEs inside the zone (RFC 1034 §4.3.2)."""
        found = []
        for _ in range(8):
            if (name, rdtype) in self.rrsets:
                return [*found, self.rrsets[(name, rdtype)]]
            cname = self.rrsets.get((name, "CNAME"))
            if cname is None or rdtype == "CNAME":
                return found
            found.append(cname)
            name = _key(cname[0].target.to_text())
        return found

    def _exists(self, name: str) -> bool:
        """Whether name owns records or is above a name that does (RFC 8020: then it is not NXDOMAIN)."""
        return any(owner == name or owner.endswith("." + name) for owner, _ in self.rrsets)


def _listed(name: str, names: set[str]) -> bool:
    return any(_key(listed) == name for listed in names)


def _recv_exactly(connection: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data
