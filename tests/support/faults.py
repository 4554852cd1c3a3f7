"""A misbehaving SMTP server for tests: one small function per way a server can go wrong.

`FaultServer("drip")` listens on a free 127.0.0.1 port and hands every connection it accepts to
the behaviour's function, each in its own thread:

    with FaultServer("long_line", endless=True) as server:
        run(plan, "--port", str(server.port))

A test with a dialogue of its own passes the function instead of a name (the scripted mode):

    def late_reply(peer: Peer) -> None:
        peer.send(b"220 slow.test ESMTP\r\n")
        peer.read_line()
        peer.pause(1.5)
        peer.send(b"250 late\r\n")

    with FaultServer(late_reply) as server: ...

A behaviour talks to the client through a `Peer`. Leaving the context manager closes the listener
and every connection, so no behaviour outlives its test, however stubborn it is. This is the one
server the tests use for anything a well-behaved SMTP server would not do.
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["BEHAVIOURS", "Concurrency", "FaultServer", "Peer"]

BANNER = b"220 faults.test ESMTP ready\r\n"
EHLO_REPLY = b"250-faults.test greets you\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 STARTTLS\r\n"
REPLIES = {  # RFC 5321 §4.3.2: what a well-behaved server answers to each verb
    "HELO": b"250 faults.test\r\n",
    "EHLO": EHLO_REPLY,
    "MAIL": b"250 2.1.0 Ok\r\n",
    "RCPT": b"250 2.1.5 Ok\r\n",
    "RSET": b"250 2.0.0 Ok\r\n",
    "NOOP": b"250 2.0.0 Ok\r\n",
    "DATA": b"354 End data with <CR><LF>.<CR><LF>\r\n",
    "STARTTLS": b"454 4.7.0 TLS not available\r\n",
    "QUIT": b"221 2.0.0 Bye\r\n",
}
QUEUED = b"250 2.0.0 Ok: queued as FAULTS1\r\n"
UNKNOWN = b"500 5.5.2 Error: command not recognized\r\n"
# Everything a normal session (banner, EHLO, MAIL, RCPT, DATA, body, QUIT) receives, in bytes:
# random_drop cuts the server's side of the dialogue at a random offset into it.
DIALOGUE_BYTES = len(BANNER) + sum(len(REPLIES[v]) for v in ("EHLO", "MAIL", "RCPT", "DATA", "QUIT")) + len(QUEUED)

CHUNK = 64 * 1024
MAX_LINE = 64 * 1024  # a client line longer than this is the client misbehaving; stop reading it
IDLE_LIMIT = 60.0  # a behaviour still waiting on its client after this long gives up


class Dropped(Exception):
    """random_drop closed the connection on purpose."""


class Peer:
    """One accepted connection, as a behaviour sees it."""

    def __init__(self, sock: socket.socket, server: FaultServer, rng: random.Random, budget: int | None) -> None:
        self.sock = sock
        self.server = server
        self.options = server.options
        self.rng = rng
        self.budget = budget  # bytes left to send before closing (random_drop), None for no limit
        self.sent = 0
        self._buf = bytearray()

    def send(self, data: bytes) -> None:
        if self.budget is not None and len(data) > self.budget:
            self.sock.sendall(data[: self.budget])
            raise Dropped
        self.sock.sendall(data)
        self.sent += len(data)
        if self.budget is not None:
            self.budget -= len(data)

    def read_line(self) -> bytes | None:
        """The client's next line, CRLF included; None once the client has closed."""
        while b"\n" not in self._buf:
            if len(self._buf) > MAX_LINE:
                return None
            chunk = self.sock.recv(CHUNK)
            if not chunk:
                return None
            self._buf += chunk
        end = self._buf.index(b"\n") + 1
        line = bytes(self._buf[:end])
        del self._buf[:end]
        return line

    def read_bytes(self, n: int) -> bytes:
        """Up to n bytes of whatever the client sends (fewer once it closes), lines or not."""
        while len(self._buf) < n:
            chunk = self.sock.recv(min(CHUNK, n - len(self._buf)))
            if not chunk:
                break
            self._buf += chunk
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def commands(self) -> Iterator[tuple[str, bytes]]:
        """(VERB, line) for each command the client sends, until it closes."""
        while (line := self.read_line()) is not None:
            yield line.split(b" ", 1)[0].strip().upper().decode("ascii", "replace"), line

    def pause(self, seconds: float) -> bool:
        """Sleep; False when the server is shutting down and the behaviour should stop."""
        return not self.server.stopping.wait(seconds)

    def hold(self) -> None:
        """Keep the connection open, reading and ignoring whatever the client sends, until it closes."""
        while self.sock.recv(CHUNK):
            pass

    def finish(self) -> None:
        """Hang up the sending side, then read whatever still comes until the client closes.

        Closing with unread data would send a reset, and a reset may wipe the last reply out of
        the client's buffers before it reads it.
        """
        self.sock.shutdown(socket.SHUT_WR)
        self.hold()

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN: SO_LINGER on with a zero timeout."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def converse(peer: Peer, delay: float = 0.0, special: dict[str, bytes] | None = None) -> None:
    """A well-behaved SMTP server's side of the dialogue, each reply `delay` seconds late."""
    replies = {**REPLIES, **(special or {})}
    for verb, _line in peer.commands():
        if delay and not peer.pause(delay):
            return
        peer.send(replies.get(verb, UNKNOWN))
        if verb == "QUIT":
            return
        if verb == "DATA" and replies["DATA"].startswith(b"354"):
            if not read_body(peer):
                return
            peer.send(QUEUED)


def read_body(peer: Peer) -> bool:
    """Read a DATA body up to its CRLF.CRLF (RFC 5321 §4.1.1.4); False when the client left first."""
    while (line := peer.read_line()) is not None:
        if line == b".\r\n":
            return True
    return False


# --- behaviours: one function each, registered by name --------------------------------------------------------

Behaviour = Callable[[Peer], None]
BEHAVIOURS: dict[str, Behaviour] = {}


def behaviour(fn: Behaviour) -> Behaviour:
    BEHAVIOURS[fn.__name__] = fn
    return fn


@behaviour
def normal(peer: Peer) -> None:
    peer.send(BANNER)
    converse(peer)


@behaviour
def slow(peer: Peer) -> None:
    """Every reply after the banner comes `delay` seconds late."""
    peer.send(BANNER)
    converse(peer, delay=peer.options.get("delay", 0.8))


@behaviour
def silent(peer: Peer) -> None:
    peer.hold()


@behaviour
def drip(peer: Peer) -> None:
    """The banner one byte per second: each byte is progress, the whole reply is not."""
    for byte in BANNER:
        peer.send(bytes([byte]))
        if not peer.pause(1.0):
            return
    converse(peer)


@behaviour
def long_line(peer: Peer) -> None:
    """A 220 line of 1 MB that never ends (with endless=True: bytes without LF until the client leaves)."""
    peer.send(b"220 ")
    block = b"x" * CHUNK
    if peer.options.get("endless"):
        while True:
            peer.send(block)
    for _ in range(1024 * 1024 // CHUNK):
        peer.send(block)
    peer.hold()


@behaviour
def endless_multiline(peer: Peer) -> None:
    block = b"220-x\r\n" * 1024
    while True:
        peer.send(block)


@behaviour
def junk_stream(peer: Peer) -> None:
    """Random bytes as fast as the socket takes them, up to 1 GB; in practice until the client closes."""
    limit = peer.options.get("limit", 1024 ** 3)
    try:
        while peer.sent < limit:
            peer.send(peer.rng.randbytes(CHUNK))
    finally:
        peer.server.junk_sent.append(peer.sent)


@behaviour
def close_mid_reply(peer: Peer) -> None:
    peer.send(b"220-partial\r\n")


@behaviour
def reset(peer: Peer) -> None:
    """RST right after accepting; with on_command=N, after the banner, on the client's Nth command."""
    on_command = peer.options.get("on_command", 0)
    if on_command:
        peer.send(BANNER)
        for n, (verb, _line) in enumerate(peer.commands(), start=1):
            if n == on_command:
                break
            peer.send(REPLIES.get(verb, UNKNOWN))
    peer.reset()


@behaviour
def nul(peer: Peer) -> None:
    peer.send(b"220 hi\x00there\r\n")
    peer.hold()


@behaviour
def bad_utf8(peer: Peer) -> None:
    peer.send(b"220 caf\xc3\x28 \xff\xfe\r\n")
    peer.hold()


@behaviour
def bare_lf(peer: Peer) -> None:
    peer.send(b"220 hi\n")
    peer.hold()


@behaviour
def bare_cr(peer: Peer) -> None:
    peer.send(b"220 hi\rthere\r\n")
    peer.hold()


@behaviour
def escape_codes(peer: Peer) -> None:
    """Terminal control sequences in a banner: set the window title, clear the screen, backspace."""
    peer.send(b"220 \x1b]0;owned\x07\x1b[2J\x1b[31mhello\x08\x08\x08\r\n")
    peer.hold()


@behaviour
def code_change(peer: Peer) -> None:
    """A multiline EHLO reply whose last line carries another code (RFC 5321 §4.2.1 forbids it)."""
    peer.send(BANNER)
    converse(peer, special={"EHLO": b"250-a\r\n251 b\r\n"})


@behaviour
def unsolicited(peer: Peer) -> None:
    """Two replies to EHLO; every later reply then looks like the answer to the command after it."""
    peer.send(BANNER)
    converse(peer, special={"EHLO": EHLO_REPLY + b"250 2.0.0 and one more\r\n"})


@behaviour
def stall_tls(peer: Peer) -> None:
    """220 to STARTTLS, then silence: the client's ClientHello is read and never answered."""
    peer.send(BANNER)
    for verb, _line in peer.commands():
        if verb == "STARTTLS":
            peer.send(b"220 2.0.0 Ready to start TLS\r\n")
            peer.hold()
            return
        peer.send(REPLIES.get(verb, UNKNOWN))


@behaviour
def deaf(peer: Peer) -> None:
    """Answers 354 to DATA, then stops reading: the client's body fills the socket buffers."""
    peer.send(BANNER)
    for verb, _line in peer.commands():
        peer.send(REPLIES.get(verb, UNKNOWN))
        if verb == "DATA":
            peer.pause(IDLE_LIMIT)
            return


@behaviour
def echo(peer: Peer) -> None:
    """Greets, then answers every line with `250 you said: <line>`: a server that repeats what it hears."""
    peer.send(b"220 echo ready\r\n")
    while (line := peer.read_line()) is not None:
        peer.send(b"250 you said: " + line.rstrip(b"\r\n") + b"\r\n")


@behaviour
def starttls_injection(peer: Peer) -> None:
    """Answers STARTTLS with 220 and, in the same write, a forged plaintext reply (CVE-2011-0411's twin)."""
    peer.send(BANNER)
    for verb, _line in peer.commands():
        if verb == "STARTTLS":
            peer.send(b"220 2.0.0 Ready\r\n250 2.1.0 forged\r\n")
        else:
            peer.send(REPLIES.get(verb, UNKNOWN))


@behaviour
def refuse_mid_body(peer: Peer) -> None:
    """Reads about 1 MB of a message, answers 552 as a real server does when SIZE is exceeded, hangs up."""
    peer.send(BANNER)
    for verb, _line in peer.commands():
        peer.send(REPLIES.get(verb, UNKNOWN))
        if verb == "DATA":
            peer.read_bytes(peer.options.get("read", 1_000_000))
            peer.send(b"552 5.3.4 Message size exceeds fixed limit\r\n")  # RFC 5321 §4.5.3.1.10
            peer.finish()
            return


@behaviour
def random_drop(peer: Peer) -> None:
    """A normal dialogue that, for the sessions chosen to fail, closes at a random byte of it."""
    normal(peer)


# --- the server ------------------------------------------------------------------------------------------------

class Concurrency:
    """Connections open at once, counted as the client sees them: at each new connection, those whose client
    has already hung up (its FIN arrived) are not counted, however late their behaviour's thread notices."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.peak = 0

    @staticmethod
    def _hung_up(sock: socket.socket) -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""  # readable: data or the FIN, no wait
        except (OSError, ValueError):  # reset, or already closed by its thread
            return True

    def enter(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.difference_update({s for s in self._open if self._hung_up(s)})
            self._open.add(sock)
            self.peak = max(self.peak, len(self._open))

    @property
    def now(self) -> int:
        with self._lock:
            return len(self._open)

    def leave(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)


class FaultServer:
    """A TCP server on a free loopback port; every connection gets the named behaviour (or the function given).

    Options go to the behaviours (`delay`, `endless`, `on_command`, `limit`). With `p`, each
    connection is, with probability p, cut at a random byte of the normal dialogue's replies
    (random_drop); the choice is made in accept order from one generator seeded with `seed`, so a
    run can be reproduced.
    """

    def __init__(self, behaviour: str | Behaviour, *, p: float = 0.0, seed: int = 0, **options: Any) -> None:
        self.behaviour = BEHAVIOURS[behaviour] if isinstance(behaviour, str) else behaviour
        self.name = name = self.behaviour.__name__
        self.p = p
        self.options = options
        self.rng = random.Random(seed)
        self.stopping = threading.Event()
        self.accepted = 0
        self.dropped = 0  # random_drop: sessions chosen to be cut
        self.junk_sent: list[int] = []  # junk_stream: bytes sent on each connection before the client left
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"faults-{name}", daemon=True)

    def __enter__(self) -> FaultServer:
        self._acceptor.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept (close does not)
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):  # already closed by the client
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv or sendall
        self._acceptor.join(5)
        for thread in self._threads:
            thread.join(5)

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            budget = None
            if self.p and self.rng.random() < self.p:
                self.dropped += 1
                budget = self.rng.randrange(DIALOGUE_BYTES)
            rng = random.Random(self.rng.random())
            thread = threading.Thread(target=self._serve, args=(Peer(sock, self, rng, budget),), daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            thread.start()

    def _serve(self, peer: Peer) -> None:
        sock = peer.sock
        sock.settimeout(IDLE_LIMIT)
        with self._lock:
            self._open.add(sock)
        try:
            if not self.stopping.is_set():  # stop() may have passed over this socket already
                self.behaviour(peer)
        except (OSError, Dropped):
            pass  # the client left, or the behaviour hung up on purpose
        finally:
            with self._lock:
                self._open.discard(sock)
            sock.close()
