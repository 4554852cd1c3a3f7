"""IMAP (RFC 9051/3501) through imapclient, in the wait's thread, every read bounded by its Budget.

The message is found server-side (`UID SEARCH HEADER Message-ID "<id>"`, RFC 3501 §6.4.4), so a
mailbox of 10,000 messages is never listed; only the match is fetched, and only its first
MAX_BODY_BYTES (`BODY.PEEK[TEXT]<0.n>`, §6.4.5). Waiting uses IDLE (RFC 2177) where offered.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
import ssl
from datetime import datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imap4 import IMAP4WithTimeout
from imapclient.tls import IMAP4_TLS

from runner.mail.reader import (
    MAX_BODY_BYTES,
    MAX_FOLDERS,
    MAX_HEADER_BYTES,
    Budget,
    Found,
    MailError,
    MailTimeout,
    Reader,
    Wanted,
    is_report,
    message_ids,
    parse_headers,
    report_about,
)
from runner.mail.secure import context_for, io_failure, refuse_plaintext
from runner.mail.url import is_loopback

__all__ = ["ImapReader"]

IDLE_SLICE = 5.0  # seconds of one IDLE before it is renewed with a search (RFC 2177 §3: under 29 min)
# "Try again later" in a server's words: the RFC 5530 §3 response code, or Dovecot's connection limit
_BUSY = ("UNAVAILABLE", "maximum number of connections", "too many connections")
_TIMINGS = re.compile(r"\s*\([0-9.]+(?: \+ [0-9.]+)* secs\)\.?")  # Dovecot's, after a NO or OK


class _Bounded:
    """imaplib reads through these two methods; each is counted against the budget, and a literal
    announced larger than the budget allows is refused before a byte of it is read."""

    budget: Budget
    host: str
    port: int

    def _dial(self) -> socket.socket:
        return self.budget.watch(socket.create_connection((self.host, self.port), self.budget.io_timeout()))

    def read(self, size: int) -> bytes:
        self.budget.take(size, f"an IMAP literal of {size} bytes")
        return super().read(size)  # type: ignore[misc]

    def readline(self) -> bytes:
        line = super().readline()  # type: ignore[misc]
        self.budget.take(len(line), "IMAP responses")
        return line


class _Plain(_Bounded, IMAP4WithTimeout):
    def __init__(self, budget: Budget, host: str, port: int) -> None:
        self.budget = budget
        super().__init__(host, port, budget.io_timeout())

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return self._dial()


class _Tls(_Bounded, IMAP4_TLS):
    def __init__(self, budget: Budget, host: str, port: int, context: ssl.SSLContext) -> None:
        self.budget = budget
        super().__init__(host, port, context, budget.io_timeout())

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return self.ssl_context.wrap_socket(self._dial(), server_hostname=self.host)


class _Client(IMAPClient):
    def __init__(self, budget: Budget, host: str, port: int, context: ssl.SSLContext | None) -> None:
        self._budget = budget
        super().__init__(host, port, ssl=context is not None, ssl_context=context, timeout=budget.io_timeout())
        self.normalise_times = False  # INTERNALDATE with its zone, for the arrival time

    def _create_IMAP4(self) -> imaplib.IMAP4:
        if self.ssl:
            return _Tls(self._budget, self.host, self.port, self.ssl_context)
        return _Plain(self._budget, self.host, self.port)


class ImapReader(Reader):
    client: _Client | None = None
    idle = False
    selected = ""

    def open(self) -> None:
        self._login()
        self._select(self.url.folder)

    def _select(self, folder: str) -> None:
        """SELECT (EXAMINE when nothing will be deleted) a folder; a missing one is named with those there are."""
        self.log(f"IMAP C: {'SELECT' if self.writable else 'EXAMINE'} {folder}")
        try:
            info = self._call(lambda c: c.select_folder(folder, readonly=not self.writable), what="select")
        except MailError as exc:
            if exc.transient or isinstance(exc, MailTimeout):
                raise
            raise MailError(f"{exc}; {self._folders_there(folder)}") from None
        self.selected = folder
        self.log(f"IMAP S: {info.get(b'EXISTS', '?')} EXISTS")

    def _folders_there(self, folder: str) -> str:
        try:
            names = [name for _flags, name in self._list()]
        except MailTimeout:
            raise
        except MailError:
            return f"cannot open folder {_name(folder)}"
        shown = ", ".join(map(_name, names[:20])) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        return f"its folders are {shown or 'none'}"

    def _list(self) -> list[tuple[tuple[bytes, ...], str]]:
        """The folders that can be selected (LIST "" "*", RFC 3501 §6.3.8), at most MAX_FOLDERS."""
        self.log('IMAP C: LIST "" "*"')
        listing = self._call(lambda c: c.list_folders())
        folders = [(tuple(flags), _text(name)) for flags, _sep, name in listing
                   if not {b"\\Noselect", b"\\NonExistent"} & set(flags)]
        self.log(f"IMAP S: {len(listing)} folders")
        return folders[:MAX_FOLDERS]

    def _login(self) -> None:
        url, options = self.url, self.options
        context = context_for(options) if url.implicit_tls else None
        where = _where(url.host, url.port)
        self.log(f"IMAP: connecting to {where}" + (" (implicit TLS)" if context else ""))
        self.client = self._call(lambda _c: _Client(self.budget, url.host, url.port, context), connect=True)
        self.log(f"IMAP S: {_text(self.client.welcome)}")
        caps = self._call(lambda c: c.capabilities())
        if not url.implicit_tls:
            if b"STARTTLS" in caps:
                self.log("IMAP C: STARTTLS")
                self._call(lambda c: c.starttls(context_for(options)))
                self.log("IMAP S: OK, TLS established")
                caps = self._call(lambda c: c.capabilities())
            elif not is_loopback(url.host) and not options.plaintext_password:
                raise MailError(refuse_plaintext(url, "STARTTLS"))
        self.idle = b"IDLE" in caps
        self.log(f"IMAP C: LOGIN {url.user} ********")
        try:
            self._call(lambda c: c.login(url.user, options.password))
        except LoginError as exc:
            words = _server_words(exc)
            raise MailError(f"IMAP login as {url.user} at {where} refused: {words}", transient=_busy(words)) from None
        self.log("IMAP S: OK logged in")

    def _call(self, fn: Any, connect: bool = False, what: str = "") -> Any:
        """One client call, its socket given what is left of the wait; errors in a user's words, those
        that may pass by themselves (a server restarting, a lost connection, "try later") transient."""
        where = f"IMAP server {_where(self.url.host, self.url.port)}"
        try:
            if self.client is not None and not connect:
                self.client.socket().settimeout(self.budget.io_timeout())
            return fn(self.client)
        except (MailError, LoginError):
            raise
        except (IMAPClientError, imaplib.IMAP4.error) as exc:
            self.budget.check()  # a read cut short by the deadline shows as an abort: say it was the wait
            words = _server_words(exc, what)
            lost = isinstance(exc, imaplib.IMAP4.abort)  # the connection broke, or the server said BYE
            raise MailError(f"{where}: {words}", transient=lost or _busy(words)) from None
        except OSError as exc:
            raise io_failure(exc, where, self.budget) from None

    def find(self, wanted: Wanted) -> Found | None:
        self.looks += 1
        if self.selected != self.url.folder:  # after a look elsewhere
            self._select(self.url.folder)
        return self._search(wanted)

    def _search(self, wanted: Wanted) -> Found | None:
        criteria = ["BODY", wanted.message_id] if wanted.dsn else ["HEADER", "Message-ID", f"<{wanted.message_id}>"]
        self.log(f"IMAP C: UID SEARCH {' '.join(_quote(c) for c in criteria)}")
        uids = self._call(lambda c: c.search(criteria))
        self.log(f"IMAP S: * SEARCH {' '.join(map(str, uids))}".rstrip())
        for uid in sorted(uids, reverse=True):
            found = self._fetch(uid)
            ids = message_ids(found.header)
            if report_about(found.header, found.body, wanted.message_id) if wanted.dsn else wanted.message_id in ids:
                return found
        return None

    def find_elsewhere(self, wanted: Wanted) -> Found | None:
        """The other folders, Junk and Spam first, each searched as the step's is; the one it is found
        in is left selected (for `delete:`)."""
        names = [name for _flags, name in self._list() if name != self.url.folder]
        names.sort(key=lambda n: (not any(w in n.lower() for w in ("junk", "spam")), n.lower()))
        for name in names:
            try:
                self._select(name)
            except MailTimeout:
                raise
            except MailError as exc:
                if exc.transient:
                    raise
                continue  # gone since the LIST, or not ours to open
            found = self._search(wanted)
            if found is not None and (not wanted.dsn or is_report(found.header)):
                self.log(f"IMAP: the message is in {name!r}, not in {self.url.folder!r}")
                return found
        if names:
            self._select(self.url.folder)  # where the next look and IDLE are
        return None

    def _fetch(self, uid: int) -> Found:
        items = ["RFC822.SIZE", "INTERNALDATE", f"BODY.PEEK[HEADER]<0.{MAX_HEADER_BYTES}>",
                 f"BODY.PEEK[TEXT]<0.{MAX_BODY_BYTES}>"]
        self.log(f"IMAP C: UID FETCH {uid} ({' '.join(items)})")
        data = self._call(lambda c: c.fetch([uid], items)).get(uid, {})
        header = data.get(b"BODY[HEADER]<0>") or data.get(b"BODY[HEADER]") or b""
        body = data.get(b"BODY[TEXT]<0>") or data.get(b"BODY[TEXT]") or b""
        size = data.get(b"RFC822.SIZE")
        when = data.get(b"INTERNALDATE")
        self.log(f"IMAP S: * FETCH UID {uid}: {size} bytes, {len(parse_headers(header))} header fields")
        return Found(header, body, self.selected, uid, size=size,
                     arrived=when.timestamp() if isinstance(when, datetime) else None,
                     truncated=size is not None and len(header) + len(body) < size)

    def wait(self, seconds: float) -> None:
        if not self.idle or self.client is None:
            self.budget.sleep(seconds)
            self.log("IMAP C: NOOP (the server offers no IDLE)")
            self._call(lambda c: c.noop())
            return
        seconds = min(seconds * 4, IDLE_SLICE, self.budget.remaining())
        self.log(f"IMAP C: IDLE (up to {seconds:.1f}s)")
        self._call(lambda c: c.idle())
        events = self._call(lambda c: c.idle_check(timeout=max(0.0, seconds)))
        self._call(lambda c: c.idle_done())
        if events:
            self.log("IMAP S: " + ", ".join(" ".join(_text(x) for x in e) for e in events[:5]))

    def delete(self, found: Found) -> None:
        self.log(f"IMAP C: UID STORE {found.ref} +FLAGS Deleted, then EXPUNGE")
        self._call(lambda c: c.delete_messages([found.ref]))
        caps = self._call(lambda c: c.capabilities())
        self._call(lambda c: c.uid_expunge([found.ref]) if b"UIDPLUS" in caps else c.expunge())
        self.log(f"IMAP S: OK, UID {found.ref} removed")

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if not self.budget.aborted.is_set():
                client.socket().settimeout(min(1.0, max(0.05, self.budget.remaining())))
                client.logout()
        except Exception:
            pass
        with contextlib.suppress(Exception):
            client.shutdown()


def _busy(words: str) -> bool:
    return any(word.lower() in words.lower() for word in _BUSY)


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _quote(value: str) -> str:
    return value if value.isalpha() else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _server_words(exc: BaseException, command: str = "") -> str:
    """What the server said, without imaplib's wrapping ("b'[AUTHENTICATIONFAILED] ...'", "select failed: ")
    and Dovecot's timings ("(0.001 + 0.000 secs)."). imaplib and imapclient give the server's words only inside
    an error's text: this is the one place that reads it (tests/integration/test_mailbox_hostile.py pins it)."""
    text = str(exc)
    for prefix in ("login failed: ", f"{command} failed: " if command else "", "b'", 'b"'):
        text = text.removeprefix(prefix) if prefix else text
    text = text.strip().rstrip("'\"")
    if text.startswith("[b'") or text.startswith('[b"'):
        text = text[3:].rstrip("]").rstrip("'\"")
    text = _TIMINGS.sub("", text)
    return " ".join(text.split())[:300] or type(exc).__name__


def _name(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
