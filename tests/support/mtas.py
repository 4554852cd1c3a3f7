"""Where the real mail servers of the test environment listen, as scripts/test-env.sh sets them up.

    from tests.support.mtas import EXIM, SMTP_SERVERS, require_smtp

    def test_something():
        server = require_smtp(EXIM)          # skips (or fails when CI is set) if Exim does not answer
        with smtplib.SMTP(server.host, server.port) as smtp: ...

All of them listen on 127.0.0.1 only, call themselves mail.smtprun.test, accept mail for smtprun.test,
localhost and mail.smtprun.test, refuse relay, and offer STARTTLS with the test certificate whose CA is
/etc/smtprun-test/ca.pem (names mail.smtprun.test, localhost, IP 127.0.0.1). The users below have these
passwords on every server (SMTP AUTH PLAIN/LOGIN after STARTTLS on Exim and OpenSMTPD).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

CERT_DIR = Path("/etc/smtprun-test")  # written by scripts/test-env.sh
CA_PATH = CERT_DIR / "ca.pem"
HOSTNAME = "mail.smtprun.test"
LOCAL_DOMAINS = ("smtprun.test", "localhost", "mail.smtprun.test")
USERS = {"alice": "alice-password", "bob": "bob-password"}
MTA_ROOT = Path("/srv/smtprun-mtas")  # the chroots of Exim and OpenSMTPD (scripts/env/lib.sh)


@dataclass(frozen=True)
class SmtpServer:
    name: str                 # short name: postfix, exim, opensmtpd
    software: str             # the word its 220 banner contains
    host: str
    port: int
    root: Path                # the file system it sees ("/" for the host, else its chroot)
    logs: tuple[Path, ...]
    hostname: str = HOSTNAME
    ca_path: Path = CA_PATH
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))
    auth: bool = True         # AUTH PLAIN LOGIN offered after STARTTLS
    relay_code: int = 550     # the reply to RCPT for a domain it does not serve

    def maildir(self, user: str) -> Path:
        """The user's Maildir as a path on this host (home/<user>/Maildir in the server's root)."""
        return self.root / "home" / user / "Maildir"


POSTFIX = SmtpServer("postfix", "Postfix", "127.0.0.1", 25, Path("/"), (Path("/var/log/postfix.log"),),
                     auth=False, relay_code=554)
EXIM = SmtpServer("exim", "Exim", "127.0.0.1", 2525, MTA_ROOT / "exim",
                  (Path("/var/log/smtprun-exim.log"), MTA_ROOT / "exim/var/log/exim4/mainlog"))
OPENSMTPD = SmtpServer("opensmtpd", "OpenSMTPD", "127.0.0.1", 2527, MTA_ROOT / "opensmtpd",
                       (Path("/var/log/smtprun-opensmtpd.log"),))
SMTP_SERVERS = (POSTFIX, EXIM, OPENSMTPD)


def in_ci() -> bool:
    """Whether the CI variable is set (to anything but an empty string, 0, false or no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def banner(host: str, port: int, timeout: float = 3.0) -> str | None:
    """The first line a server sends (without CRLF), or None when nothing answers."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            line = sock.makefile("rb").readline(512)
            sock.sendall(b"QUIT\r\n")
    except OSError:
        return None
    return line.decode("ascii", "replace").rstrip("\r\n") or None


def missing(reason: str) -> None:
    """Skip the calling test, or fail it when CI is set: there every server must be running."""
    import pytest

    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)")
    pytest.skip(reason)


def require_smtp(server: SmtpServer) -> SmtpServer:
    """The server if it answers 220 with its software's name; else skip, or fail in CI."""
    line = banner(server.host, server.port)
    if line is None or not line.startswith("220") or server.software not in line:
        missing(f"{server.software} does not answer on {server.host}:{server.port} (got {line!r}): "
                "run scripts/test-env.sh as root")
    return server
