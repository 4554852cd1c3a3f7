"""A garbage SMTP server for fuzzing clients: grammar-shaped random replies, reproducible from a seed.

    with GarbageServer(seed=7) as server:
        run(plan, "--host", f"127.0.0.1:{server.port}", "-j", "1")
        ...
        assert ok, f"seed {server.seed}:\n{server.transcript()}"

It listens on 127.0.0.1 and answers each connection from its own `random.Random(f"{seed}/{n}")` (n counts
connections from 0), so a client that connects one session at a time (`-j 1`) meets the same server
every time it runs with the same seed. What it does, chosen per reply by that generator:

- replies a plausible server would give for the verb (banner, EHLO keywords, 354, AUTH challenges,
  BDAT, STARTTLS) -- often enough that sessions get deep into their plans;
- and breaks them: invalid codes (`2x0`, `600`, `   `), a code followed by spaces only (`220  `),
  continuation markers that change code or never end, bare LF, bare CR, CR CR LF, LF CR, NUL, Latin-1
  8-bit bytes, C0/C1 controls, 100 KB lines, replies dripped byte by byte with small delays, replies
  before any command, `421` then close, close, RST (SO_LINGER 0), silence;
- after `220` to STARTTLS: plaintext injected behind the 220, bytes that are not TLS, or a real TLS
  handshake (with `tls=` a server-side SSLContext) and more garbage inside it;
- AUTH: the client's own lines echoed back -- verbatim, inside a valid reply, as an invalid reply line,
  and base64-decoded (the password as the client sent it) -- to test that secrets are masked everywhere.

Every write is kept in `transcript()` (per connection, bounded), so a failure shows what the client met.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import random
import socket
import ssl
import struct
import threading
import time

__all__ = ["GarbageServer"]

MAX_CLIENT_LINE = 1 << 16
MAX_LINES_PER_SESSION = 60
IDLE = 15.0  # a session thread waits this long for its client, then gives up
KEYWORDS = ["PIPELINING", "SIZE 10240000", "SIZE", "SIZE x", "8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES",
            "CHUNKING", "STARTTLS", "AUTH PLAIN LOGIN", "AUTH=PLAIN", "AUTH CRAM-MD5 XOAUTH2", "VRFY", "ETRN", "HELP",
            "X-\u00e9t\u00e9", "", " ", "=", "AUTH", "BINARYMIME"]
BAD_CODES = [b"2x0", b"600", b"000", b"99", b"abc", b"   ", b" 25", b"2500", b"199", b"\xd9\xa2\xd9\xa5\xd9\xa0"]


class _Closed(Exception):
    pass


class _Session:
    def __init__(self, server: GarbageServer, sock: socket.socket, n: int) -> None:
        self.server, self.sock, self.n = server, sock, n
        self.rng = random.Random(f"{server.seed}/{n}")
        self.buf = b""
        self.log: list[str] = []
        self.client_lines: list[bytes] = []
        self.tls = False
        # How hostile this connection is: mild ones get deep into a plan (AUTH, TLS, DATA), wild ones break early.
        self.nasty = self.rng.choice([0.1, 0.3, 1.0, 2.0])

    # --- I/O ------------------------------------------------------------------------------------------------

    def note(self, text: str) -> None:
        if len(self.log) < 400:
            self.log.append(text)

    def send(self, data: bytes, drip: bool = False) -> None:
        self.note(f"S{'~' if drip else ''}: {data[:200]!r}{f' (+{len(data) - 200} bytes)' if len(data) > 200 else ''}")
        if drip:  # byte by byte, with small delays, at most ~0.5 s in all
            for i, b in enumerate(data[:300]):
                self.sock.sendall(bytes([b]))
                if i % 3 == 0:
                    time.sleep(self.rng.uniform(0.0005, 0.004))
            data = data[300:]
        if data:
            self.sock.sendall(data)

    def read_line(self) -> bytes:
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_CLIENT_LINE:
                line, self.buf = self.buf, b""
                return line
            chunk = self.sock.recv(65536)
            if not chunk:
                raise _Closed
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        self.note(f"C: {line[:200]!r}")
        self.client_lines.append(line)
        return line + b"\n"

    def read_until(self, end: bytes, limit: int = 64 << 20) -> None:
        """Swallow a body up to `end` (DATA's CRLF.CRLF)."""
        got = 0
        while end not in self.buf:
            keep = self.buf[-len(end):]
            got += len(self.buf)
            if got > limit:
                raise _Closed
            chunk = self.sock.recv(65536)
            if not chunk:
                raise _Closed
            self.buf = keep + chunk
        self.buf = self.buf.split(end, 1)[1]
        self.note(f"C: <body> {end!r}")

    def read_exactly(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(min(65536, n - len(self.buf)))
            if not chunk:
                raise _Closed
            self.buf += chunk
        self.buf = self.buf[n:]
        self.note(f"C: <{n} BDAT bytes>")

    def reset(self) -> None:
        self.note("S: <RST>")
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        raise _Closed

    def close(self) -> None:
        self.note("S: <close>")
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        raise _Closed

    # --- replies ------------------------------------------------------------------------------------------

    def text(self) -> bytes:
        r = self.rng.random()
        if r < 0.6:
            return self.rng.choice([b"ok", b"2.0.0 Ok", b"garbage.test ESMTP", b"", b"5.5.1 what?",
                                    b"queued as G4RB4GE"])
        return self.rng.choice([b"\x00", b"\xe9\xe8\xff", b"caf\xc3\xa9", b"\x1b[2J", b"\xc2\x85", b"\r", b"\t",
                                b" ", b"\xe2\x80\xae", b"\x7f", b"%s %r %(x)s {0} {{ x }}", b"<script>x</script>&amp;"])

    def reply(self, code: int, lines: list[bytes]) -> bytes:
        out = [b"%d-%s\r\n" % (code, t) for t in lines[:-1]] + [b"%d %s\r\n" % (code, lines[-1])]
        return b"".join(out)

    def corrupt(self, data: bytes) -> bytes:
        kind = self.rng.choice(["code", "spaces", "continuation", "endless", "lf", "cr", "crcrlf", "lfcr", "nul",
                                "latin1", "control", "huge", "nocrlf", "empty", "lowercode", "tab"])
        self.note(f"*: corrupt {kind}")
        if kind == "code":
            return self.rng.choice(BAD_CODES) + data[3:]
        if kind == "spaces":
            return data[:3] + b" " * self.rng.randint(1, 4) + b"\r\n"
        if kind == "continuation":
            other = str(int(data[:3]) + self.rng.choice([1, -1, 100])).encode()
            return data[:3] + b"-first\r\n" + other + b" second\r\n"
        if kind == "endless":
            return (data[:3] + b"-more\r\n") * self.rng.choice([10, 300, 3000])
        if kind in ("lf", "cr", "crcrlf", "lfcr"):
            return data.replace(b"\r\n", {"lf": b"\n", "cr": b"\r", "crcrlf": b"\r\r\n", "lfcr": b"\n\r"}[kind])
        if kind == "nul":
            i = self.rng.randint(0, max(len(data) - 2, 0))
            return data[:i] + b"\x00" + data[i:]
        if kind == "latin1":
            return data[:4] + "Gr\u00fc\u00dfe \u00e9t\u00e9".encode("latin-1") + data[4:]
        if kind == "control":
            return data[:4] + self.rng.choice([b"\x1b]0;x\x07", b"\x08", b"\x0c", b"\xc2\x9b31m"]) + data[4:]
        if kind == "huge":
            return data[:4] + b"x" * 100_000 + b"\r\n"
        if kind == "nocrlf":
            return data.rstrip(b"\r\n")
        if kind == "empty":
            return b"\r\n"
        if kind == "lowercode":
            return b"OK " + data
        return data[:3] + b"\t" + data[4:]

    def emit(self, data: bytes, p_bad: float = 0.25) -> None:
        """Send a reply, maybe broken, maybe dripped, maybe with an unasked-for reply behind it; or hang up."""
        p_bad = min(p_bad * self.nasty, 0.9)
        r = self.rng.random() / self.nasty
        if r < 0.03:
            self.close()
        if r < 0.05:
            self.reset()
        if r < 0.07:
            self.send(b"421 4.3.2 garbage.test shutting down\r\n")
            self.close()
        if r < 0.08:
            self.note("*: silence")
            return
        if self.rng.random() < p_bad:
            data = self.corrupt(data)
        drip = self.rng.random() < 0.08
        if self.rng.random() < 0.06 * self.nasty:  # an early reply: one the client has not asked for yet
            data += self.reply(self.rng.choice([250, 220, 554, 354]), [self.text()])
        self.send(data, drip=drip)

    def echo(self, line: bytes) -> bytes:
        """The client's line back to it, in one of several forms (secret-masking tests)."""
        raw = line.rstrip(b"\r\n")
        decoded = [raw]
        for word in raw.split()[-1:] or [raw]:
            with contextlib.suppress(binascii.Error, ValueError):
                blob = base64.b64decode(word, validate=True)
                decoded = [blob, *blob.split(b"\x00")]
        payload = self.rng.choice([raw, *decoded])
        form = self.rng.choice(["text", "invalid", "continuation", "bare"])
        self.note(f"*: echo {form}")
        if form == "text":
            return b"535 5.7.8 rejected: " + payload + b"\r\n"
        if form == "invalid":
            return b"xx " + payload + b"\r\n"
        if form == "continuation":
            return b"535-" + payload + b"\r\n535 5.7.8 no\r\n"
        return payload + b"\r\n"

    # --- the session ----------------------------------------------------------------------------------------

    def banner(self) -> None:
        r = self.rng.random()
        if r < 0.08 * self.nasty:
            self.note("*: early talker")
            self.send(b"250 before the banner\r\n")
        kind = self.rng.random()
        kind /= self.nasty
        if kind < 0.1:
            self.emit(b"220-garbage.test\r\n220-" + self.text() + b"\r\n220 ready\r\n")
        elif kind < 0.17:
            self.send(self.rng.choice([b"220  \r\n", b"220 \r\n", b"220\r\n", b"220   \t\r\n"]))
        elif kind < 0.22:
            self.emit(b"554 5.3.2 no service\r\n", p_bad=0.1)
        else:
            self.emit(b"220 garbage.test ESMTP " + self.text() + b"\r\n")

    def answer(self, line: bytes) -> None:
        words = line.strip().split()
        verb = words[0].upper().decode("ascii", "replace") if words else ""
        if verb in ("EHLO", "HELO"):
            keys = self.rng.sample(KEYWORDS, self.rng.randint(0, 8))
            self.emit(self.reply(250, [b"garbage.test hello", *(k.encode() for k in keys)]))
        elif verb == "DATA":
            code = self.rng.choice([354, 354, 354, 250, 554, 451])
            self.emit(self.reply(code, [b"go ahead " + self.text()]))
            if code == 354:
                self.read_until(b"\r\n.\r\n")
                self.emit(self.reply(self.rng.choice([250, 250, 550, 451]), [b"2.0.0 Ok: queued as G4RB"]))
        elif verb == "BDAT" and len(words) > 1 and words[1].isdigit():
            self.read_exactly(int(words[1]))
            self.emit(self.reply(self.rng.choice([250, 250, 554]), [b"2.0.0 chunk " + words[1]]))
        elif verb == "STARTTLS":
            self.starttls()
        elif verb == "AUTH":
            self.auth(line, words)
        elif verb == "QUIT":
            self.emit(self.reply(self.rng.choice([221, 221, 250, 421]), [b"2.0.0 Bye"]))
            if self.rng.random() < 0.7:
                self.close()
        else:
            code = self.rng.choice([250, 250, 250, 251, 252, 450, 550, 553, 500, 354])
            if self.rng.random() < 0.2:
                self.emit(self.echo(line), p_bad=0.1)
            else:
                self.emit(self.reply(code, [self.text()]))

    def starttls(self) -> None:
        r = self.rng.random()
        if r < 0.15:
            self.emit(b"454 4.7.0 TLS not available\r\n")
            return
        if r < 0.3:  # response injection: plaintext behind the 220, in the same write (CVE-2011-0411's twin)
            self.send(b"220 2.0.0 go ahead\r\n250 injected\r\n")
        else:
            self.send(b"220 2.0.0 Ready to start TLS\r\n")
        if self.server.tls is not None and not self.tls and self.rng.random() < 0.6:
            self.note("*: TLS handshake")
            try:
                self.sock = self.server.tls.wrap_socket(self.sock, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                self.note(f"*: handshake failed: {exc}")
                raise _Closed from None
            self.tls = True
            return
        noise = bytes(self.rng.randrange(256) for _ in range(99))
        self.send(self.rng.choice([b"250 not TLS at all\r\n", b"\x16\x03\x01\x00\x05hello", b"\x00" * 64,
                                   b"HTTP/1.1 400 Bad Request\r\n\r\n", noise]))
        if self.rng.random() < 0.5:
            self.close()

    def auth(self, line: bytes, words: list[bytes]) -> None:
        mech = words[1].upper() if len(words) > 1 else b""
        if self.rng.random() < 0.3:
            self.emit(self.echo(line), p_bad=0.0)
            return
        if mech == b"LOGIN" or (mech == b"PLAIN" and len(words) == 2):
            for prompt in ([b"VXNlcm5hbWU6", b"UGFzc3dvcmQ6"] if mech == b"LOGIN" else [b""]):
                self.emit(b"334 " + prompt + b"\r\n", p_bad=0.05)
                answer = self.read_line()
                if self.rng.random() < 0.5:
                    self.emit(self.echo(answer), p_bad=0.0)
                    return
        elif mech == b"CRAM-MD5":
            self.emit(b"334 " + base64.b64encode(b"<1.2@garbage.test>") + b"\r\n", p_bad=0.05)
            self.emit(self.echo(self.read_line()), p_bad=0.0)
            return
        self.emit(self.reply(self.rng.choice([235, 235, 535, 334, 501]), [b"2.7.0 " + self.text()]))

    def run(self) -> None:
        try:
            self.sock.settimeout(IDLE)
            self.banner()
            for _ in range(MAX_LINES_PER_SESSION):
                line = self.read_line()
                self.answer(line)
            self.close()
        except (_Closed, OSError, ssl.SSLError) as exc:
            if not isinstance(exc, _Closed):
                self.note(f"*: {type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(OSError):
                self.sock.close()


class GarbageServer:
    """Listens on 127.0.0.1 (a free port); one thread per connection; a context manager."""

    def __init__(self, seed: int, tls: ssl.SSLContext | None = None) -> None:
        self.seed = seed
        self.tls = tls
        self.sessions: list[_Session] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, name=f"garbage-{seed}", daemon=True)
        self._lock = threading.Lock()

    def __enter__(self) -> GarbageServer:
        self._accepter.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                session = _Session(self, sock, len(self.sessions))
                self.sessions.append(session)
            t = threading.Thread(target=session.run, daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for s in self.sessions:
                with contextlib.suppress(OSError):
                    s.sock.close()
        self._accepter.join(5)
        for t in self._threads:
            t.join(5)

    def transcript(self, limit: int = 12000) -> str:
        """What every connection saw, for assertion messages (bounded)."""
        out = []
        for s in self.sessions:
            out.append(f"--- connection {s.n} (rng seed {self.seed}/{s.n})")
            out.extend(s.log)
        text = "\n".join(out)
        return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit} more characters)"


class ScriptedServer:
    """The opposite of GarbageServer, for pinning down one finding: a fixed answer to each client line.

    `script[0]` is sent on connect; each later item answers the next client line, either bytes or a
    function of that line (bytes, CRLF included). After the script the connection is closed. Every
    connection plays the same script.
    """

    def __init__(self, script: list) -> None:
        self.script = script
        self.seed = "scripted"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []

    def __enter__(self) -> ScriptedServer:
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()
        for t in self._threads:
            t.join(5)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self._socks.append(sock)
            t = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(IDLE)
        buf = b""
        with contextlib.suppress(OSError), sock:
            for i, item in enumerate(self.script):
                line = b""
                if i:
                    while b"\n" not in buf:
                        chunk = sock.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                    line, _, buf = buf.partition(b"\n")
                sock.sendall(item(line) if callable(item) else item)

    def transcript(self) -> str:
        return f"scripted server: {self.script!r}"[:4000]
