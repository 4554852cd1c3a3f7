"""`listen://127.0.0.1:PORT`: smtprun as the next hop, so a plan can test an MTA's outbound path.

A case starts a listener for every listen:// its steps name before its first step (the message it
sends must find someone there), and stops it after its last. Concurrent cases naming the same
port share one server (counted), each finding its own message by Message-ID. The server is
aiosmtpd in its own thread; it keeps at most MAX_ARRIVALS messages, each at most MAX_MESSAGE_BYTES
(RFC 1870 SIZE advertised), and offers STARTTLS when the step gives a certificate.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from runner.errors import SmtprunError
from runner.mail.maildir import read_bounded
from runner.mail.reader import MAX_BODY_BYTES, MAX_HEADER_BYTES, Found, Reader, Wanted, message_ids
from runner.mail.url import MailboxUrl

__all__ = ["ListenError", "ListenReader", "Listeners"]

MAX_ARRIVALS = 1000
MAX_MESSAGE_BYTES = MAX_HEADER_BYTES + MAX_BODY_BYTES
HOSTNAME = "listen.smtprun.invalid"  # the name the listener greets with


class ListenError(SmtprunError):
    """A listener could not start: the port is taken, the certificate cannot be read."""


@dataclass
class Arrival:
    found: Found
    seq: int


class Inbox:
    """What arrived at one listener, newest last; readers wait on it."""

    def __init__(self) -> None:
        self.items: deque[Arrival] = deque(maxlen=MAX_ARRIVALS)
        self.changed = threading.Condition()
        self.seq = 0

    def add(self, found: Found) -> None:
        with self.changed:
            self.seq += 1
            self.items.append(Arrival(found, self.seq))
            self.changed.notify_all()


class _Handler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import io

        data = envelope.original_content or envelope.content or b""
        header, body, cut = read_bounded(io.BytesIO(data))
        tls = session.ssl or {}
        obj = tls.get("ssl_object")
        smtp = {"peer": f"{session.peer[0]}:{session.peer[1]}" if session.peer else None,
                "ehlo": session.host_name, "tls": obj is not None,
                "tls_version": obj.version() if obj is not None else None,
                "cipher": obj.cipher()[0] if obj is not None and obj.cipher() else None,
                "mail_from": envelope.mail_from, "rcpt_to": list(envelope.rcpt_tos),
                "starttls_offered": server.tls_context is not None}
        self.inbox.add(Found(header, body, "", self.inbox.seq + 1, size=len(data), arrived=time.time(),
                             truncated=cut, smtp=smtp))
        return "250 2.0.0 Ok: taken by smtprun"


class _Server:
    def __init__(self, host: str, port: int, context: ssl.SSLContext | None) -> None:
        from aiosmtpd.controller import Controller

        self.inbox = Inbox()
        self.users = 0
        self.controller = Controller(_Handler(self.inbox), hostname=host, port=port, server_hostname=HOSTNAME,
                                     ready_timeout=5.0, tls_context=context, require_starttls=False,
                                     data_size_limit=MAX_MESSAGE_BYTES, decode_data=False)


_SERVERS: dict[tuple[str, int], _Server] = {}
_LOCK = threading.Lock()


def _context(certfile: str, keyfile: str) -> ssl.SSLContext | None:
    if not certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile or None)
    except (OSError, ssl.SSLError) as exc:
        raise ListenError(f"cannot load the listener's certificate {certfile}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    return context


def _acquire(url: MailboxUrl, certfile: str, keyfile: str) -> _Server:
    key = (url.host, url.port)
    with _LOCK:
        server = _SERVERS.get(key)
        if server is None:
            server = _Server(url.host, url.port, _context(certfile, keyfile))
            try:
                server.controller.start()
            except Exception as exc:
                why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
                raise ListenError(f"cannot listen on {url.host}:{url.port}: {why}") from None
            _SERVERS[key] = server
        server.users += 1
        return server


def _release(url: MailboxUrl) -> None:
    key = (url.host, url.port)
    with _LOCK:
        server = _SERVERS.get(key)
        if server is None:
            return
        server.users -= 1
        if server.users <= 0:
            del _SERVERS[key]
            server.controller.stop()


class Listeners:
    """The listeners one case started, by URL."""

    def __init__(self) -> None:
        self.servers: dict[MailboxUrl, _Server] = {}

    async def start(self, wanted: list[tuple[MailboxUrl, str, str]]) -> None:
        for url, certfile, keyfile in wanted:
            if url not in self.servers:
                self.servers[url] = await asyncio.to_thread(_acquire, url, certfile, keyfile)

    async def stop(self) -> None:
        urls, self.servers = list(self.servers), {}
        for url in urls:
            await asyncio.to_thread(_release, url)

    def inbox(self, url: MailboxUrl) -> Inbox | None:
        server = self.servers.get(url.with_folder(""))
        return server.inbox if server is not None else None


class ListenReader(Reader):
    def __init__(self, url: MailboxUrl, options: Any, budget: Any, log: Any, listeners: Listeners | None) -> None:
        super().__init__(url, options, budget, log)
        self.box = listeners.inbox(url) if listeners is not None else None

    def open(self) -> None:
        from runner.mail.reader import MailError

        if self.box is None:
            raise MailError(f"no listener on {self.url.host}:{self.url.port}: the case did not start one (it starts "
                            "those it can read before connecting: written out or from variables, not from a capture)")
        self.log(f"SMTP listener {self.url.host}:{self.url.port}: {self.box.seq} message(s) so far")

    def find(self, wanted: Wanted) -> Found | None:
        assert self.box is not None
        self.looks += 1
        with self.box.changed:
            items = list(self.box.items)
        for item in reversed(items):
            if wanted.message_id in message_ids(item.found.header):
                smtp = item.found.smtp
                self.log(f"SMTP listener: message from {smtp.get('peer')}, EHLO {smtp.get('ehlo')}, "
                         + (f"TLS {smtp.get('tls_version')}" if smtp.get("tls") else "no TLS"))
                return item.found
        return None

    def wait(self, seconds: float) -> None:
        assert self.box is not None
        with self.box.changed:
            self.box.changed.wait(max(0.0, min(seconds * 4, self.budget.remaining())))

    def delete(self, found: Found) -> None:
        assert self.box is not None
        with self.box.changed:
            for item in list(self.box.items):
                if item.found is found:
                    self.box.items.remove(item)
