"""One interface for every kind of mailbox: open it, look for a message, wait, delete it, close.

Readers are blocking (imapclient, poplib and mailbox are), so a whole wait runs in a thread of its
own (runner.mail.wait). Every socket a reader opens is registered with the wait's Budget: it
bounds the bytes read and the time taken, and on the deadline shuts those sockets down, so a
server that drips one byte a second cannot keep a reader past `within:`.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runner.errors import SmtprunError
from runner.mail.url import MailboxUrl

__all__ = ["MAX_BODY_BYTES", "MAX_FOLDERS", "MAX_HEADER_BYTES", "MAX_SESSION_BYTES", "Budget", "Found", "MailError",
           "MailTimeout", "Options", "Reader", "Wanted", "header_fields", "is_report", "message_ids", "parse_headers",
           "passes", "report_about"]

MAX_HEADER_BYTES = 256 * 1024  # a delivered copy's header section read at most; more is cut
MAX_BODY_BYTES = 1024 * 1024  # of its body: a larger message is not read whole (body: sees this much)
MAX_SESSION_BYTES = 16 * 1024 * 1024  # read from one mailbox server in one wait, whatever it sends
MAX_SCAN = 500  # messages one look reads headers of where the server cannot search (POP3, Maildir)
MAX_FOLDERS = 50  # other folders looked through for a message that is not in the one the step names

Log = Callable[[str], None]


class MailError(SmtprunError):
    """A mailbox could not be read: refused login, TLS failure, a bound reached. One line, no secret.
    `transient`: it may pass by itself (the server restarting, a dropped connection, "try again later"),
    so the wait tries again; a refused password, a certificate or a missing folder will not."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def passes(exc: BaseException) -> bool:
    """Whether a socket or TLS failure may pass by itself: refused, reset or closed connections (a server
    restarting), a TLS handshake cut short; not a certificate, a TLS mismatch or an unknown host."""
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return True
    if isinstance(exc, ssl.SSLError):  # certificate verification, plaintext on a TLS port, no shared protocol
        return False
    if isinstance(exc, socket.gaierror):
        return exc.errno == socket.EAI_AGAIN  # the resolver's "try again", not "no such name"
    return isinstance(exc, (ConnectionError, EOFError))


class MailTimeout(MailError):
    """The wait's deadline passed while a mailbox server was being read."""


@dataclass(frozen=True)
class Options:
    password: str = ""
    cafile: str = ""
    verify: bool = True
    plaintext_password: bool = False  # send the password unencrypted to a host that is not loopback


@dataclass(frozen=True)
class Wanted:
    message_id: str  # without angle brackets
    dsn: bool = False  # a delivery status notification about it, not the message itself
    since: float = 0.0  # wall time the case started: nothing older can be the message


@dataclass
class Found:
    header: bytes  # the header section, at most MAX_HEADER_BYTES
    body: bytes  # the body, or its first MAX_BODY_BYTES
    folder: str
    ref: Any  # the reader's own handle: an IMAP UID, a Maildir key, a POP3 UIDL
    size: int | None = None  # the whole message's size, where the mailbox says
    arrived: float | None = None  # wall time it arrived (INTERNALDATE, the file's name, the listener)
    truncated: bool = False
    smtp: dict[str, Any] = field(default_factory=dict)  # listen://: the MTA's EHLO name, TLS, envelope

    @property
    def raw(self) -> bytes:
        return self.header + self.body

    def fields(self, name: str) -> list[str]:
        """Every header field of that name, unfolded, in order."""
        wanted = name.lower()
        return [" ".join(v.split()) for n, v in header_fields(self.header) if n.lower() == wanted]


def parse_headers(header: bytes) -> Any:
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(header)


def header_fields(header: bytes) -> list[tuple[str, str]]:
    """(name, value) of each header field, in order; 8-bit values read as UTF-8 (RFC 6532), as an SMTPUTF8
    message's are, not shown as replacement characters."""
    return [(name, value.encode("ascii", "surrogateescape").decode("utf-8", "replace") if isinstance(value, str)
             else str(value)) for name, value in parse_headers(header).raw_items()]


REPORT_TYPES = ("multipart/report", "multipart/mixed")


def is_report(header: bytes) -> bool:
    """Whether a header section may be a delivery status notification's: multipart/report (RFC 6522), or
    multipart/mixed, as some MTAs send theirs (OpenSMTPD 7.4); dsn.parse_dsn tells which it is."""
    return parse_headers(header).get_content_type() in REPORT_TYPES


def report_about(header: bytes, body: bytes, message_id: str) -> bool:
    """Whether a message is a delivery report that names `message_id`: a multipart/report, or a multipart/mixed
    one that carries a message/delivery-status part (judge.report says when a report is not conformant)."""
    if not is_report(header) or message_id.encode() not in body:
        return False
    return parse_headers(header).get_content_type() == "multipart/report" or b"message/delivery-status" in body.lower()


def message_ids(header: bytes) -> list[str]:
    return [v.strip().strip("<>").strip() for v in parse_headers(header).get_all("Message-ID", [])]


class Budget:
    """The time and bytes one wait may spend, shared by the thread reading and the loop watching."""

    def __init__(self, seconds: float, max_bytes: int = MAX_SESSION_BYTES) -> None:
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.max_bytes, self.used = max_bytes, 0
        self.sockets: list[socket.socket] = []
        self.aborted = threading.Event()
        self.lock = threading.Lock()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def io_timeout(self) -> float:
        """For a socket: what is left, never zero (zero would make it non-blocking)."""
        self.check()
        return max(0.05, self.remaining())

    def check(self) -> None:
        if self.aborted.is_set() or self.remaining() <= 0:
            raise MailTimeout(f"the wait of {self.seconds:g}s ran out")

    def take(self, n: int, what: str = "data") -> None:
        self.used += n
        if self.used > self.max_bytes:
            raise MailError(f"the server sent {what} past the bound of {self.max_bytes} bytes for one wait")

    def watch(self, sock: socket.socket) -> socket.socket:
        with self.lock:
            self.sockets.append(sock)
        if self.aborted.is_set():
            self.abort()
        return sock

    def sleep(self, seconds: float) -> None:
        self.aborted.wait(max(0.0, min(seconds, self.remaining())))

    def abort(self) -> None:
        """From another thread: end every read in progress now."""
        self.aborted.set()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class Reader:
    """A mailbox of one kind. `find` looks once; `wait` lets time pass until the next look."""

    def __init__(self, url: MailboxUrl, options: Options, budget: Budget, log: Log) -> None:
        self.url, self.options, self.budget, self.log = url, options, budget, log
        self.looks = 0
        self.writable = False  # the caller will delete what it finds

    def open(self) -> None:
        """Connect and log in; MailError when that cannot be done."""

    def find(self, wanted: Wanted) -> Found | None:
        raise NotImplementedError

    def find_elsewhere(self, wanted: Wanted) -> Found | None:
        """Look once in the mailbox's other folders (a bounded number): where a message that is not in
        the folder the step names went instead. None where a mailbox has no folders (POP3, listen://)."""
        return None

    def wait(self, seconds: float) -> None:
        self.budget.sleep(seconds)

    def delete(self, found: Found) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Log out, never raising."""
