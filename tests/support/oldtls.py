"""A TLS server of another age, written in bytes: it reads a ClientHello and answers with a hand-written ServerHello
choosing, in its own order, the first of its suites the client offers (RC4, 3DES, EXPORT: what Debian's OpenSSL can
neither offer nor serve), then ServerHelloDone; or a handshake_failure alert. It never gets further, which is all a
scan by elimination reads. `answer` is the byte logic; `old_tls_server` puts it behind SMTP STARTTLS on loopback.

Wire formats: RFC 5246 §6.2.1 (records), §7.4.1.2-7.4.1.3 (ClientHello, ServerHello), §7.2 (alerts).
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

RC4_SHA, DES_CBC3_SHA, EXP_RC4_MD5 = 0x0005, 0x000A, 0x0003  # IANA codes (RFC 5246 §A.5, RFC 2246 §A.5)
HANDSHAKE_FAILURE = bytes([21, 3, 1, 0, 2, 2, 40])  # a fatal handshake_failure alert record


@dataclass(frozen=True)
class OldTls:
    suites: tuple[int, ...] = (RC4_SHA, DES_CBC3_SHA, EXP_RC4_MD5)  # in the server's order
    version: int = 0x0301  # the highest it speaks: TLS 1.0


def offered(hello: bytes) -> tuple[int, list[int]]:
    """(legacy_version, cipher suites) of a ClientHello record."""
    body = hello[9:]  # record header (5), handshake type and length (4)
    version = struct.unpack("!H", body[:2])[0]
    at = 34 + 1 + body[34]  # version, random, session id
    length = struct.unpack("!H", body[at:at + 2])[0]
    return version, [struct.unpack("!H", body[i:i + 2])[0] for i in range(at + 2, at + 2 + length, 2)]


def server_hello(version: int, suite: int) -> bytes:
    """A ServerHello (no extensions) and ServerHelloDone in one handshake record."""
    hello = struct.pack("!H", version) + b"\x22" * 32 + b"\x00" + struct.pack("!HB", suite, 0)
    messages = b"\x02" + len(hello).to_bytes(3, "big") + hello + b"\x0e\x00\x00\x00"
    return struct.pack("!BHH", 22, version, len(messages)) + messages


def answer(server: OldTls, hello: bytes) -> bytes:
    version, suites = offered(hello)
    chosen = next((s for s in server.suites if s in suites), None)
    return HANDSHAKE_FAILURE if chosen is None else server_hello(min(version, server.version), chosen)


def _read_record(conn: socket.socket) -> bytes:
    data = b""
    while len(data) < 5 or len(data) < 5 + struct.unpack("!H", data[3:5])[0]:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    return data


class _Smtp(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        conn = self.request
        conn.sendall(b"220 old.smtprun.test ESMTP\r\n")
        with contextlib.suppress(OSError), conn.makefile("rb") as lines:
            for line in lines:
                verb = line.split()[0].upper() if line.split() else b""
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250-old.smtprun.test\r\n250 STARTTLS\r\n")
                elif verb == b"STARTTLS":
                    conn.sendall(b"220 2.0.0 go ahead\r\n")
                    if hello := _read_record(conn):
                        conn.sendall(answer(self.server.tls, hello))
                    return
                elif verb == b"QUIT":
                    conn.sendall(b"221 2.0.0 bye\r\n")
                    return
                else:
                    conn.sendall(b"502 5.5.2 not here\r\n")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls: OldTls


@contextlib.contextmanager
def old_tls_server(tls: OldTls = OldTls()) -> Iterator[int]:
    """A STARTTLS server on 127.0.0.1 answering with `answer`; yields its port."""
    server = _Server(("127.0.0.1", 0), _Smtp)
    server.tls = tls
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
