"""The line `smtprun record` talks over: a socket, a thread that shows replies as they arrive, and
the terminal they show on (a waiting prompt is redrawn around them)."""

from __future__ import annotations

import queue
import select
import signal
import socket
import ssl
import threading
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TextIO

from runner.errors import ProtocolError
from runner.net import tls as tlsinfo
from runner.plan.write import printable
from runner.smtp.protocol import Reply
from runner.smtp.session import SmtpSession
from runner.text import excerpt

__all__ = ["CHUNK", "Display", "Handshake", "LiveConnection", "Terminal", "describe_tls"]

CHUNK = 64 * 1024
_RETRY = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


@dataclass(frozen=True)
class Handshake:
    """How the TLS handshake after STARTTLS ended: `problem` is None when TLS is in force."""

    problem: str | None = None
    unverified: bool = False  # the certificate did not verify: a CA file (or not verifying) may be what is missing


def describe_tls(sock: ssl.SSLSocket, context: ssl.SSLContext) -> str:
    """The TLS line `smtprun -v` prints: version, cipher, certificate, verified or not."""
    verified = context.verify_mode != ssl.CERT_NONE
    return tlsinfo.describe_session(tlsinfo.session_facts(sock, verified))  # type: ignore[arg-type]


class Display:
    """Where the session shows. The reader thread writes here too: a waiting prompt is redrawn."""

    def __init__(self, stream: TextIO, redraw: bool) -> None:
        self.stream, self.redraw, self.lock = stream, redraw, threading.Lock()
        self.prompt: str | None = None  # set while input() waits at it

    def show(self, text: str) -> None:
        with self.lock:
            if self.redraw and self.prompt is not None:
                import readline

                text = f"\r\x1b[K{text}\n{self.prompt}{readline.get_line_buffer()}"
            else:
                text += "\n"
            self.stream.write(text)
            self.stream.flush()

    def reply(self, reply: Reply) -> None:
        lines = reply.raw.decode("utf-8", "replace").split("\r\n")[:-1]
        self.show("\n".join("S: " + printable(line) for line in lines))

    def note(self, text: str) -> None:
        self.show("* " + text)


@dataclass(frozen=True)
class Terminal:
    """The user's side of a session: where it shows, where typed lines come from, and whether that is a
    terminal (line editing, a prompt) or piped input."""

    display: Display
    stdin: TextIO
    interactive: bool


class LiveConnection:
    """A socket, a reader thread that queues events — ("reply", Reply), ("closed", None),
    ("error", why), ("tls", Handshake) — and a lock, since an SSL object must not be used by two
    threads at once. The socket is non-blocking: a TLS record with no data in it (a session ticket)
    must not leave the reader stuck inside recv() holding the lock."""

    def __init__(self, sock: socket.socket, host: str, timeout: float, display: Display, interrupt: bool):
        self.sock, self.host, self.timeout, self.display = sock, host, timeout, display
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.tls, self.ended, self.interrupted = isinstance(sock, ssl.SSLSocket), False, False
        self.upgrade: ssl.SSLContext | None = None  # set before STARTTLS: hand-shake after its 220
        self._interrupt, self._lock, self._stop = interrupt, threading.Lock(), threading.Event()
        sock.setblocking(False)
        self._thread = threading.Thread(target=self._serve, name="smtp-reader", daemon=True)
        self._thread.start()

    def send(self, data: bytes) -> None:
        """Send it all, or as much as the server takes before it leaves (the reader reports that)."""
        view = memoryview(data)
        while view and not self.ended:
            with self._lock:
                try:
                    sent = self.sock.send(view)
                except _RETRY:
                    sent = 0
                except OSError:
                    return
            view = view[sent:]
            if not sent:
                select.select([], [self.sock], [], 0.5)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def _event(self, kind: str, value: Any) -> None:
        self.events.put((kind, value))
        if kind in ("closed", "error"):
            self.ended = True
            with self.display.lock:  # wake input() so the session ends now, not at the next Enter
                if self._interrupt and self.display.prompt is not None:
                    self.interrupted = True
                    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    def _serve(self) -> None:
        smtp = SmtpSession()
        try:
            while not self._stop.is_set():
                if self._readable() and not self._read(smtp):
                    return
        except ProtocolError as exc:
            self._event("error", f"protocol error: {exc.describe(excerpt)}")
        except (ConnectionResetError, BrokenPipeError):
            self._event("closed", None)
        except OSError as exc:
            self._event("error", f"connection error: {exc.strerror or exc}")

    def _readable(self) -> bool:
        """Data waits, in the TLS layer's buffer or on the socket, within a moment (so a stop is noticed)."""
        if self.tls and self.sock.pending():  # type: ignore[attr-defined]
            return True
        return bool(select.select([self.sock], [], [], 0.2)[0])

    def _read(self, smtp: SmtpSession) -> bool:
        """Read what came and show the replies it completes; False once the session is over."""
        with self._lock, suppress(*_RETRY):
            data = self.sock.recv(CHUNK)
            if not data:
                self._event("closed", None)
                return False
            smtp.receive(data)
            if self.upgrade is not None:  # STARTTLS was sent (or is about to be)
                smtp.starttls_sent()
            return self._replies(smtp)
        return True  # a TLS record with no data in it

    def _replies(self, smtp: SmtpSession) -> bool:
        """Show and queue each whole reply; after the one to STARTTLS, hand-shake. False when that fails."""
        while isinstance(reply := smtp.next_event(), Reply):
            self.display.reply(reply)
            self._event("reply", reply)
            if self.upgrade is not None:
                upgraded = reply.code != 220 or self._handshake(smtp)
                self.upgrade = None
                if not upgraded:
                    return False
        return True

    def _handshake(self, smtp: SmtpSession) -> bool:
        """After the 220 to STARTTLS: the session's RFC 3207 §4.2 check, then the TLS handshake."""
        injected = smtp.starttls_accepted()
        if injected is not None:
            self._event("tls", Handshake(f"the server sent {len(injected.data)} bytes of plaintext after its 220 "
                                         "to STARTTLS: response injection (RFC 3207 §4.2)"))
            return False
        context = self.upgrade
        assert context is not None
        try:
            self.sock.settimeout(self.timeout)
            self.sock = context.wrap_socket(self.sock, server_hostname=self.host)
            self.sock.setblocking(False)
        except OSError as exc:
            unverified = isinstance(exc, ssl.SSLCertVerificationError)
            self._event("tls", Handshake(tlsinfo.describe_failure(exc), unverified))
            return False
        smtp.tls_established()
        self.tls = True
        self.display.note(describe_tls(self.sock, context))  # type: ignore[arg-type]
        self._event("tls", Handshake())
        return True
