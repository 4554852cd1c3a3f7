"""The embedded SMTP server: aiosmtpd in its own thread, answering like a chosen real server.

A profile is a table of reply literals, an EHLO keyword list and a few limits. The policy is
the same for every profile: DSN parameters are accepted (RFC 3461), recipients named
``unknown`` or ``nosuchuser*`` do not exist, and a profile with ``accepted_domains`` refuses
to relay for anyone who has not authenticated.

This module starts and stops the server (its TLS and its AUTH account given as options) and runs
it in the foreground for `smtprun serve`; what a session says is `server_session`.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from aiosmtpd.controller import Controller

from runner.errors import ServerError, UsageError
from runner.tools.profiles import PROFILES, Profile
from runner.tools.server_session import ProfileHandler, ProfileSMTP, Received

__all__ = ["PROFILES", "EmbeddedServer", "Profile", "Received", "ServerAuth", "ServerTls", "run_until_interrupted",
           "server_tls_context", "tls_from_files"]


class _ProfileController(Controller):
    def factory(self) -> ProfileSMTP:
        return ProfileSMTP(self.handler, **self.SMTP_kwargs)  # one per connection


def free_port(host: str) -> int:
    """A port that was free a moment ago (aiosmtpd's ready check cannot connect to port 0)."""
    family = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0][0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def server_tls_context(cert_file: str, key_file: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate; `implicit`: TLS from the first byte (RFC 8314 §3), else after STARTTLS;
    `required`: before STARTTLS every command but EHLO, HELO, NOOP, QUIT and STARTTLS is refused with
    530 (RFC 3207 §4), as a submission port or an internal relay that insists on TLS does."""

    context: ssl.SSLContext
    implicit: bool = False
    required: bool = False


@dataclass(frozen=True)
class ServerAuth:
    """The one account AUTH accepts; `require_tls`: AUTH is offered only once TLS is in force (RFC 4954 §4)."""

    user: str
    password: str
    require_tls: bool = True


class EmbeddedServer:
    """A real SMTP server on loopback, in a thread; ``messages`` lists what it took."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, profile: str = "default", *,
                 tls: ServerTls | None = None, auth: ServerAuth | None = None):
        if profile not in PROFILES:
            raise UsageError(f"unknown server profile {profile!r} (known: {', '.join(PROFILES)})")
        self.host, self.port = host, port
        self.profile = PROFILES[profile]
        self.messages: list[Received] = []
        self.on_message: Callable[[Received], None] | None = None  # called in the server's thread
        self._lock = threading.Lock()
        self._tls, self._auth = tls, auth
        self._controller: _ProfileController | None = None

    def _record(self, message: Received) -> None:
        with self._lock:
            self.messages.append(message)
        if self.on_message is not None:
            self.on_message(message)

    def start(self) -> EmbeddedServer:
        if self.port == 0:
            self.port = free_port(self.host)
        tls, auth = self._tls, self._auth
        implicit = tls is not None and tls.implicit
        context = tls.context if tls is not None else None
        self._controller = _ProfileController(
            ProfileHandler(self._record),
            profile=self.profile,
            credentials=(auth.user, auth.password) if auth is not None else None,
            hostname=self.host,
            port=self.port,
            ssl_context=context if implicit else None,
            tls_context=None if implicit else context,
            require_starttls=tls is not None and tls.required and not implicit,
            # Over implicit TLS (RFC 8314 s 3) every session is already encrypted.
            auth_require_tls=(auth is None or auth.require_tls) and not implicit,
        )
        try:
            self._controller.start()
        except (OSError, RuntimeError, TimeoutError) as exc:  # aiosmtpd re-raises its thread's error
            self._controller = None
            cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ServerError(f"cannot listen on {self.host}:{self.port}: {cause}") from None
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def tls_from_files(cert_file: str | None, key_file: str | None, implicit: bool) -> ServerTls | None:
    """The TLS a server was given as files (--tls-cert, --tls-key, --implicit-tls), loaded; None without one."""
    if cert_file is None:
        if key_file or implicit:
            raise UsageError("--tls-key and --implicit-tls need --tls-cert")
        return None
    try:
        return ServerTls(server_tls_context(cert_file, key_file), implicit)
    except (OSError, ssl.SSLError) as error:
        raise UsageError(f"cannot load the TLS certificate {cert_file}: {error}") from error


def run_until_interrupted(server: EmbeddedServer, out: TextIO = sys.stdout) -> None:
    """Run the server in the foreground until Ctrl-C, printing one line per message taken."""
    server.on_message = lambda m: print(
        f"smtprun serve: message from <{m.mail_from}> to {', '.join(f'<{r}>' for r in m.rcpt_tos)}"
        f" ({len(m.data)} bytes)", file=out, flush=True)
    try:
        with server:
            print(f"smtprun serve: listening on {server.host}:{server.port} (profile {server.profile.name})",
                  file=out, flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("smtprun serve: stopped", file=out, flush=True)
