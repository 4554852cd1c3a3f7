"""Mailbox URLs as a plan writes them, read in one place.

    imap://user@host[:port][/FOLDER]     RFC 5092; port 143, STARTTLS when the server offers it
    imaps://user@host[:port][/FOLDER]    implicit TLS, port 993 (RFC 8314 §3.3)
    pop3://user@host[:port]              RFC 2384; port 110, STLS when offered (RFC 2595 §4)
    pop3s://user@host[:port]             implicit TLS, port 995
    maildir:/path/to/Maildir             read on this machine (Maildir++ folders: maildir:/path#Junk)
    mbox:/var/mail/USER                  an mbox file on this machine (RFC 4155), as Sendmail delivers
    listen://127.0.0.1:PORT              smtprun listens there itself, as the next hop, while the case runs

A password never goes in the URL (it would be shown wherever the mailbox is): `password:` holds it.
Errors are MailboxErrors (ValueErrors) whose message names what is wrong.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

from runner.net.address import parse_port

__all__ = ["KINDS", "MailboxError", "MailboxUrl", "is_loopback", "parse_mailbox", "url_password"]

DEFAULT_PORTS = {"imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995}
KINDS = ("imap", "imaps", "pop3", "pop3s", "maildir", "mbox", "listen")


class MailboxError(ValueError):
    """A mailbox URL that cannot be read: `why` is what is wrong, `shown` the URL (any password masked)."""

    def __init__(self, shown: str, why: str) -> None:
        super().__init__(f"mailbox {shown!r}: {why}")
        self.shown, self.why = shown, why


@dataclass(frozen=True)
class MailboxUrl:
    kind: str  # one of KINDS
    user: str = ""
    host: str = ""
    port: int = 0
    folder: str = "INBOX"  # IMAP folder, or a Maildir++ folder ("INBOX": the Maildir itself)
    path: str = ""  # maildir: the directory; mbox: the file

    @property
    def implicit_tls(self) -> bool:
        return self.kind in ("imaps", "pop3s")

    @property
    def protocol(self) -> str:
        """IMAP, POP3, Maildir, mbox or SMTP (the listener), as a transcript names it."""
        names = {"imap": "IMAP", "imaps": "IMAP", "pop3": "POP3", "pop3s": "POP3", "maildir": "Maildir", "mbox": "mbox"}
        return names.get(self.kind, "SMTP")

    def with_folder(self, folder: str) -> MailboxUrl:
        return MailboxUrl(self.kind, self.user, self.host, self.port, folder, self.path)

    def __str__(self) -> str:
        if self.kind == "maildir":
            return f"maildir:{self.path}" + (f"#{self.folder}" if self.folder != "INBOX" else "")
        if self.kind == "mbox":
            return f"mbox:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        folder = f"/{self.folder}" if self.kind in ("imap", "imaps") else ""
        return f"{self.kind}://{user}{host}:{self.port}{folder}"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: a password may go there in clear text."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_mailbox(text: str) -> MailboxUrl:
    """A mailbox URL (see the module's grammar); ValueError saying what is wrong."""
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in KINDS:
        raise MailboxError(text, f"expected a URL starting {', '.join(k + ':' for k in KINDS)}")
    if scheme == "maildir":
        return _maildir(text, rest)
    if scheme == "mbox":
        return _mbox(text, rest)
    parts = urlsplit(text)
    host, port = _server(text, scheme, parts)
    if scheme == "listen":
        return _listen(text, host, port, parts.username, parts.path)
    return _account(text, scheme, parts, host, port)


def _maildir(text: str, rest: str) -> MailboxUrl:
    path, _, folder = unquote(rest.removeprefix("//")).partition("#")
    if not path.startswith("/"):
        raise MailboxError(text, "a maildir: URL needs an absolute path (maildir:/home/alice/Maildir)")
    return MailboxUrl("maildir", path=path, folder=folder or "INBOX")


def _mbox(text: str, rest: str) -> MailboxUrl:
    path = unquote(rest.removeprefix("//"))
    if not path.startswith("/") or "#" in path:
        raise MailboxError(text, "an mbox: URL is an absolute path to the file, no folder (mbox:/var/mail/alice)")
    return MailboxUrl("mbox", path=path)


def _server(text: str, scheme: str, parts: SplitResult) -> tuple[str, int | None]:
    """The host and port of a URL that names a server, checked for what every such scheme refuses."""
    if parts.password is not None:
        raise MailboxError(_without_password(text), "a password does not belong in the URL; "
                           "give it as password: (e.g. \"{{ env.IMAP_PASSWORD }}\")")
    try:
        host, port = parts.hostname or "", parts.port
    except ValueError as exc:  # a port that is not a number, or out of range
        raise MailboxError(text, str(exc)) from None
    if not host:
        shape = {"imap": "USER@HOST/FOLDER", "pop3": "USER@HOST", "list": "127.0.0.1:PORT"}[scheme[:4]]
        raise MailboxError(text, f"no host (write {scheme}://{shape})")
    if port == 0:
        raise MailboxError(text, "port 0 names no port")
    if parts.query or parts.fragment:
        raise MailboxError(text, "no ?query or #fragment is understood here")
    return host, port


def _account(text: str, scheme: str, parts: SplitResult, host: str, port: int | None) -> MailboxUrl:
    """An IMAP or POP3 mailbox: a user on a server, and for IMAP a folder."""
    user = unquote(parts.username or "")
    if not user:
        raise MailboxError(text, f"no user (write {scheme}://USER@{host}/...)")
    folder = unquote(parts.path.strip("/")) or "INBOX"  # (a trailing slash is no part of the folder's name)
    if scheme.startswith("pop3") and parts.path not in ("", "/"):
        raise MailboxError(text, "POP3 has one mailbox, no folders")
    return MailboxUrl(scheme, user, host, DEFAULT_PORTS[scheme] if port is None else port, folder)


def _listen(text: str, host: str, port: int | None, user: str | None, path: str) -> MailboxUrl:
    if user or path not in ("", "/"):
        raise MailboxError(text, "a listen: URL is listen://ADDRESS:PORT, nothing more")
    if port is None:
        raise MailboxError(text, "a listen: URL needs a port (listen://127.0.0.1:2600)")
    parse_port(str(port))
    if not is_loopback(host) or host == "localhost":
        raise MailboxError(text, "smtprun listens only on a loopback address (127.0.0.0/8 or ::1)")
    return MailboxUrl("listen", host=host, port=port, folder="")


def url_password(text: str) -> str | None:
    """The password a URL's user part holds (`imap://alice:PASSWORD@host`), if any, to be masked."""
    try:
        return urlsplit(text.strip()).password
    except ValueError:
        return None


def _without_password(text: str) -> str:
    head, at, tail = text.rpartition("@")
    if not at:
        return text
    scheme, _, userinfo = head.partition("://")
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{tail}"
