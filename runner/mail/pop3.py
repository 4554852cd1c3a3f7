"""POP3 (RFC 1939) through poplib, in the wait's thread, every read bounded by its Budget.

POP3 has no search: each look logs in afresh (a maildrop is a snapshot taken at login, §8),
lists the messages (UIDL, RFC 1939 §7), and reads only the headers (`TOP n 0`) of those it has
not seen, newest first, at most MAX_SCAN a look. Of the match, a message over MAX_BODY_BYTES is
read with TOP and a bounded number of lines, never whole. STLS (RFC 2595 §4) is used when offered.
"""

from __future__ import annotations

import poplib
import socket
import ssl
from typing import Any

from runner.mail.reader import (
    MAX_BODY_BYTES,
    MAX_SCAN,
    Budget,
    Found,
    MailError,
    Reader,
    Wanted,
    is_report,
    message_ids,
    report_about,
)
from runner.mail.secure import context_for, io_failure, refuse_plaintext
from runner.mail.url import is_loopback

__all__ = ["Pop3Reader"]

MAX_TOP_LINES = 4000  # body lines read with TOP of a message over MAX_BODY_BYTES (poplib: 2048 bytes a line)


class _Pop3(poplib.POP3):
    def __init__(self, budget: Budget, host: str, port: int, context: ssl.SSLContext | None) -> None:
        self.budget, self.context = budget, context
        super().__init__(host, port, budget.io_timeout())

    def _create_socket(self, timeout: float) -> socket.socket:
        sock = self.budget.watch(socket.create_connection((self.host, self.port), self.budget.io_timeout()))
        return self.context.wrap_socket(sock, server_hostname=self.host) if self.context else sock

    def _getline(self) -> tuple[bytes, int]:
        line, octets = super()._getline()
        self.budget.take(octets, "POP3 responses")
        return line, octets


class Pop3Reader(Reader):
    pop: _Pop3 | None = None

    def open(self) -> None:
        self.seen: set[bytes] = set()

    def _login(self) -> _Pop3:
        url, options = self.url, self.options
        where = f"[{url.host}]:{url.port}" if ":" in url.host else f"{url.host}:{url.port}"
        context = context_for(options) if url.implicit_tls else None
        self.log(f"POP3: connecting to {where}" + (" (implicit TLS)" if context else ""))
        pop = self.pop = self._call(lambda: _Pop3(self.budget, url.host, url.port, context))
        self.log(f"POP3 S: {_text(pop.welcome)}")
        if not url.implicit_tls:
            caps = self._call(lambda: pop.capa(), quiet=True) or {}
            if "STLS" in caps:
                self.log("POP3 C: STLS")
                self._call(lambda: pop.stls(context_for(options)))
                self.log("POP3 S: +OK, TLS established")
            elif not is_loopback(url.host) and not options.plaintext_password:
                raise MailError(refuse_plaintext(url, "STLS"))
        self.log(f"POP3 C: USER {url.user}")
        self._call(lambda: pop.user(url.user))
        self.log("POP3 C: PASS ********")
        self._call(lambda: pop.pass_(options.password), refused=f"POP3 login as {url.user} at {where} refused")
        self.log("POP3 S: +OK logged in")
        return pop

    def _call(self, fn: Any, quiet: bool = False, refused: str = "") -> Any:
        """One poplib call, its socket given what is left of the wait; errors in a user's words (`refused`
        before the server's when it answers -ERR), those that may pass by themselves transient."""
        host = f"[{self.url.host}]" if ":" in self.url.host else self.url.host
        where = f"POP3 server {host}:{self.url.port}"
        try:
            if self.pop is not None:
                self.pop.sock.settimeout(self.budget.io_timeout())
            return fn()
        except MailError:
            raise
        except poplib.error_proto as exc:
            self.budget.check()
            if quiet:
                return None
            words = _text(exc.args[0] if exc.args else exc)
            raise MailError(f"{refused or where}: {words}", transient=_later(words)) from None
        except OSError as exc:
            raise io_failure(exc, where, self.budget) from None

    def find(self, wanted: Wanted) -> Found | None:
        self.looks += 1
        pop = self._login()
        self.log("POP3 C: UIDL")
        listing = self._call(lambda: pop.uidl())[1]
        fresh = []
        for line in listing:
            num, _, uid = line.partition(b" ")
            if uid not in self.seen:
                fresh.append((int(num), uid))
        self.log(f"POP3 S: {len(listing)} messages, {len(fresh)} not looked at yet")
        for num, uid in sorted(fresh, reverse=True)[:MAX_SCAN]:
            self.log(f"POP3 C: TOP {num} 0")
            header = b"\r\n".join(self._call(lambda n=num: pop.top(n, 0))[1]) + b"\r\n"
            self.seen.add(uid)
            if wanted.dsn and not is_report(header):
                continue
            if not wanted.dsn and wanted.message_id not in message_ids(header):
                continue
            found = self._body(pop, num, uid, header)
            if not wanted.dsn or report_about(header, found.body, wanted.message_id):
                return found
        return None

    def _body(self, pop: _Pop3, num: int, uid: bytes, header: bytes) -> Found:
        size = int(self._call(lambda: pop.list(num)).split()[2])
        if size <= MAX_BODY_BYTES:
            self.log(f"POP3 C: RETR {num}")
            lines = self._call(lambda: pop.retr(num))[1]
        else:
            self.log(f"POP3 C: TOP {num} {MAX_TOP_LINES} (the message is {size} bytes)")
            lines = self._call(lambda: pop.top(num, MAX_TOP_LINES))[1]
        raw = b"\r\n".join(lines) + b"\r\n"
        head, sep, body = raw.partition(b"\r\n\r\n")
        return Found(head + sep if sep else header, body[:MAX_BODY_BYTES], "INBOX", (num, uid), size=size,
                     truncated=size > len(raw))

    def wait(self, seconds: float) -> None:
        self._quit()  # the next look logs in again: a maildrop does not change during a session
        self.budget.sleep(seconds)

    def delete(self, found: Found) -> None:
        pop = self.pop
        assert pop is not None
        num, _ = found.ref
        self.log(f"POP3 C: DELE {num}, then QUIT")
        self._call(lambda: pop.dele(num))
        self._call(lambda: pop.quit())
        self.pop = None
        self.log("POP3 S: +OK removed")

    def _quit(self) -> None:
        pop, self.pop = self.pop, None
        if pop is None:
            return
        try:
            if not self.budget.aborted.is_set():
                pop.sock.settimeout(min(1.0, max(0.05, self.budget.remaining())))
                pop.quit()
        except (OSError, poplib.error_proto):
            pass
        finally:
            pop.close()

    def close(self) -> None:
        self._quit()


def _later(words: str) -> bool:
    """A refusal that says "try later": the RFC 3206 §4 response codes IN-USE (another session holds the
    maildrop), LOGIN-DELAY and SYS/TEMP; not AUTH, SYS/PERM or a bare -ERR (a wrong password)."""
    return any(code in words.upper() for code in ("[IN-USE]", "[LOGIN-DELAY]", "[SYS/TEMP]"))


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
