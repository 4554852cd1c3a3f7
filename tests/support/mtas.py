"""Where the real mail servers of the test environment listen, as scripts/test-env.sh sets them up.

SMTP: Postfix 127.0.0.1:25 (the host's), Exim 4.96 127.0.0.1:2525 and OpenSMTPD 7.4 127.0.0.1:2527 (each in a
chroot under /srv/smtprun-mtas) are SMTP_SERVERS, the three most tests run against. ALL_SMTP_SERVERS adds
Sendmail 8.17 :2529, Courier-MTA 1.0 :2531, qpsmtpd 0.94 :2533 (chroots) and Haraka 3.3 :2535 (npm, under
/srv/smtprun-mtas/haraka), each set up as a small site would be (scripts/env/<name>.sh); what sets each apart
is in its SmtpServer fields. Around Postfix, a closed mail loop (scripts/env/mailbox.sh): it delivers
to ~/Maildir/ of Unix users alice and bob; Dovecot serves those Maildirs over IMAP/POP3 (DOVECOT); OpenDKIM
signs mail From: *@signed.smtprun.test (DKIM); and some domains are accepted and then bounced, relayed to a
loopback port, discarded, or deferred (BOUNCE_DOMAIN, RELAY_DOMAIN, DISCARD_DOMAIN, DEFER_DOMAIN).

    from tests.support.mtas import EXIM, SMTP_SERVERS, require_smtp

    def test_something():
        server = require_smtp(EXIM)          # skips (or fails when CI is set) if Exim does not answer
        with smtplib.SMTP(server.host, server.port) as smtp: ...

All of them listen on 127.0.0.1 only, call themselves mail.smtprun.test, accept mail for smtprun.test,
localhost and mail.smtprun.test, refuse relay, and offer STARTTLS with the test certificate whose CA is
/etc/smtprun-test/ca.pem (names mail.smtprun.test, localhost, IP 127.0.0.1). The users below have these
passwords on every server (SMTP AUTH PLAIN/LOGIN after STARTTLS where `auth` says so). Where mail for a
user lands differs: a Maildir (`mailbox`, in the server's root), or Sendmail's mbox /var/mail/<user>.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

CERT_DIR = Path("/etc/smtprun-test")  # written by scripts/test-env.sh
CA_PATH = CERT_DIR / "ca.pem"
HOSTNAME = "mail.smtprun.test"
LOCAL_DOMAINS = ("smtprun.test", "localhost", "mail.smtprun.test")
USERS = {"alice": "alice-password", "bob": "bob-password"}
MTA_ROOT = Path("/srv/smtprun-mtas")  # a chroot per MTA, and Haraka's folder (scripts/env/lib.sh)


@dataclass(frozen=True)
class SmtpServer:
    name: str                 # short name: postfix, exim, ..., haraka (as the plans' header tables write it)
    software: str             # the word its 220 banner contains (but see ehlo_mark)
    host: str
    port: int
    root: Path                # the file system it sees ("/" for the host, else its chroot)
    logs: tuple[Path, ...]
    hostname: str = HOSTNAME
    ca_path: Path = CA_PATH
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))
    auth: bool = True         # AUTH PLAIN LOGIN offered after STARTTLS
    auth_before_tls: bool = False  # AUTH offered before STARTTLS too (Haraka's auth/flat_file, to loopback)
    dsn: bool = True          # DSN offered (RFC 3461), and delivery reports sent to a local sender's mailbox
    relay_code: int = 550     # the reply to RCPT for a domain it does not serve
    mailbox: str = "home/{user}/Maildir"  # where a local user's mail lands, in the server's root
    mbox: bool = False        # `mailbox` is one mbox file (Sendmail's /var/mail/<user>), not a Maildir
    # A client address the server does not trust to relay: Sendmail trusts 127.0.0.1 whatever its config says.
    relay_source: str = "127.0.0.1"
    # Where the banner does not name the software (Courier: "220 mail.smtprun.test ESMTP"), the EHLO reply
    # line that does; `software` is then only the name tests print.
    ehlo_mark: str = ""
    max_per_ip: int | None = None  # simultaneous connections from one address before one is closed unanswered
    login: str = "{user}"     # the AUTH user name of a user (qpsmtpd's auth_flat_file wants an address)

    def maildir(self, user: str) -> Path:
        """The user's Maildir as a path on this host (home/<user>/Maildir in the server's root)."""
        return self.root / "home" / user / "Maildir"

    def login_name(self, user: str) -> str:
        return self.login.format(user=user)

    def mailbox_path(self, user: str) -> Path:
        """Where the user's mail lands, as a path on this host: a Maildir, or an mbox file when `mbox`."""
        return self.root / self.mailbox.format(user=user)

    def mailbox_url(self, user: str) -> str:
        """The user's mailbox as a plan's expect_delivery or expect_dsn names it (maildir: or mbox:)."""
        return f"{'mbox' if self.mbox else 'maildir'}:{self.mailbox_path(user)}"


POSTFIX = SmtpServer("postfix", "Postfix", "127.0.0.1", 25, Path("/"), (Path("/var/log/postfix.log"),),
                     auth=False, relay_code=554)
EXIM = SmtpServer("exim", "Exim", "127.0.0.1", 2525, MTA_ROOT / "exim",
                  (Path("/var/log/smtprun-exim.log"), MTA_ROOT / "exim/var/log/exim4/mainlog"))
OPENSMTPD = SmtpServer("opensmtpd", "OpenSMTPD", "127.0.0.1", 2527, MTA_ROOT / "opensmtpd",
                       (Path("/var/log/smtprun-opensmtpd.log"),))
SMTP_SERVERS = (POSTFIX, EXIM, OPENSMTPD)
SENDMAIL = SmtpServer("sendmail", "Sendmail", "127.0.0.1", 2529, MTA_ROOT / "sendmail",
                      (Path("/var/log/smtprun-sendmail.log"),), mailbox="var/mail/{user}", mbox=True,
                      relay_source="127.0.0.2")
COURIER = SmtpServer("courier", "Courier", "127.0.0.1", 2531, MTA_ROOT / "courier",
                     (Path("/var/log/smtprun-courier.log"),), relay_code=513, ehlo_mark="XVERP=Courier",
                     max_per_ip=5)
QPSMTPD = SmtpServer("qpsmtpd", "qpsmtpd", "127.0.0.1", 2533, MTA_ROOT / "qpsmtpd",
                     (Path("/var/log/smtprun-qpsmtpd.log"),), mailbox="var/lib/qpsmtpd/maildir/{user}",
                     login="{user}@smtprun.test", dsn=False)
HARAKA = SmtpServer("haraka", "Haraka", "127.0.0.1", 2535, MTA_ROOT / "haraka",
                    (Path("/var/log/smtprun-haraka.log"),), auth_before_tls=True, dsn=False)
# Extra listeners of the host's Postfix (scripts/env/postfix-listeners.sh): one that reads a PROXY protocol
# header before its banner, one that trusts loopback clients with XCLIENT and XFORWARD, one that relays for a
# client certificate.
POSTFIX_PROXY_PORT = 2541
POSTFIX_PROXY_TLS_PORT = 2545  # the same, then TLS from the first byte (as on 465)
POSTFIX_XCLIENT_PORT = 2543
# The last asks for a client certificate and relays (to any domain) for the test client certificate alone
# (permit_tls_clientcerts, its SHA-256 fingerprint in relay_clientcerts); its twin has TLS from the first byte.
POSTFIX_CLIENTCERT_PORT = 2547
POSTFIX_CLIENTCERT_TLS_PORT = 2549
CLIENT_CERT = CERT_DIR / "client.pem"  # CN=client.smtprun.test, issued by CLIENT_CA
CLIENT_KEY = CERT_DIR / "client.key"
CLIENT_CA = CERT_DIR / "client-ca.pem"
# The private Dovecot's LMTP (scripts/env/dovecot.conf), delivering into the same Maildirs as Postfix.
DOVECOT_LMTP_PORT = 2424
DOVECOT_LMTP_SOCKET = Path("/run/smtprun-dovecot/lmtp")
# The seven, for the tests written for all of them (tests/integration/test_seven_mtas.py, test_plan_headers.py).
ALL_SMTP_SERVERS = (*SMTP_SERVERS, SENDMAIL, COURIER, QPSMTPD, HARAKA)


def find_delivered(server: SmtpServer, user: str, message_id: str, seconds: float = 15.0) -> bytes | None:
    """The message with this Message-ID as the server delivered it to the user (from the Maildir's new/ or
    cur/, or from the mbox), waiting up to `seconds` for it; None if it did not arrive. Read as root."""
    deadline = time.monotonic() + seconds
    needle = message_id.encode()
    while True:
        found = _find_in_mbox(server.mailbox_path(user), needle) if server.mbox else \
            _find_in_maildir(server.mailbox_path(user), needle)
        if found is not None or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _find_in_maildir(maildir: Path, needle: bytes) -> bytes | None:
    for sub in ("new", "cur"):
        try:
            entries = list((maildir / sub).iterdir())
        except FileNotFoundError:
            continue
        for path in entries:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # moved from new/ to cur/ meanwhile
            if needle in data:
                return data
    return None


def _find_in_mbox(path: Path, needle: bytes) -> bytes | None:
    """The message of the mbox (messages start at lines "From ") that holds needle."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    for message in re.split(rb"(?m)^(?=From )", data):
        if needle in message:
            return message
    return None


# --- the mail loop around Postfix (scripts/env/mailbox.sh) -----------------------------------------

# Accepted by Postfix, then refused at RCPT by the next hop (smtp-sink on 127.0.0.1:2599): the sender gets
# a "failed" DSN ("Undelivered Mail Returned to Sender") in its Maildir within a second or two.
BOUNCE_DOMAIN = "bounce.smtprun.test"
BOUNCE_NEXT_HOP_PORT = 2599
# Accepted by Postfix and relayed to [127.0.0.1]:2600, where a test listens (nothing else does). Mail sent
# while nothing listens is deferred and retried (bounced after an hour); match what arrives by Message-ID.
RELAY_DOMAIN = "relay.smtprun.test"
RELAY_PORT = 2600
RELAY_LOCK = Path("/tmp/smtprun-relay-port.lock")


@contextlib.contextmanager
def relay_port_held(timeout: float = 60.0) -> Iterator[int]:
    """RELAY_PORT for this test alone: the tests that listen there (plans/outbound.yaml, a sink for
    RELAY_DOMAIN) take turns through a file lock, across xdist workers and test runs on the machine."""
    import fcntl

    with RELAY_LOCK.open("a") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{RELAY_LOCK} held for over {timeout:g}s by another test") from None
                time.sleep(0.05)
        try:
            yield RELAY_PORT
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
# Accepted by Postfix and dropped (discard: transport; the log says "status=sent (discard.smtprun.test)").
DISCARD_DOMAIN = "discard.smtprun.test"
# Accepted by Postfix, then deferred: its next hop (smtp-sink on 127.0.0.1:2598) answers RCPT with 450 4.3.0,
# so the message stays in the queue, is retried and never delivered; no DSN unless NOTIFY=DELAY (and then
# only after delay_warning_time). A test that sends there removes its mail from the queue (drop_queued).
DEFER_DOMAIN = "defer.smtprun.test"
DEFER_NEXT_HOP_PORT = 2598
POSTFIX_LOG = Path("/var/log/postfix.log")


def drop_queued(domain: str, message_ids: Iterable[str] | None = None) -> int:
    """Remove from Postfix's queue the messages with a recipient in `domain` (postqueue -j), only those
    with one of `message_ids` in their header when given (postcat -h), so concurrent tests keep theirs
    (postsuper -d): how many were removed. Run as root, as the tests are."""
    import json
    import subprocess

    def header(queue_id: str) -> str:
        return subprocess.run(["postcat", "-h", "-q", queue_id], capture_output=True, text=True, timeout=10,
                              check=False).stdout

    listing = subprocess.run(["postqueue", "-j"], capture_output=True, text=True, timeout=10, check=False).stdout
    ids = [m["queue_id"] for m in map(json.loads, filter(None, listing.splitlines()))
           if any(r["address"].lower().endswith("@" + domain) for r in m.get("recipients", []))]
    if message_ids is not None:
        wanted = set(message_ids)
        ids = [i for i in ids if any(f"<{mid}>" in header(i) for mid in wanted)]
    if ids:
        subprocess.run(["postsuper", "-d", "-"], input="\n".join(ids) + "\n", capture_output=True, text=True,
                       timeout=10, check=False)
    return len(ids)


@dataclass(frozen=True)
class Dovecot:
    """A private Dovecot instance (its own config and base_dir), the test certificate on every TLS port."""

    host: str = "127.0.0.1"
    imap_port: int = 143      # STARTTLS offered; plaintext LOGIN allowed on loopback
    imaps_port: int = 993
    pop3_port: int = 110      # STLS offered
    pop3s_port: int = 995
    config: Path = CERT_DIR / "dovecot/dovecot.conf"
    log: Path = Path("/var/log/smtprun-dovecot.log")
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))

    def maildir(self, user: str) -> Path:
        """The Maildir Postfix delivers to and Dovecot reads (readable by root and the user only)."""
        return Path("/home") / user / "Maildir"


DOVECOT = Dovecot()


@dataclass(frozen=True)
class Dkim:
    """OpenDKIM as Postfix's milter: signs mail whose From: is in `domain` when the client is 127.0.0.1,
    verifies signatures when it is not (connect from `verify_source`), adding Authentication-Results with
    authserv-id mail.smtprun.test. Verification reads the public key from a file, not DNS."""

    domain: str = "signed.smtprun.test"
    selector: str = "test"
    milter_port: int = 8891
    txt_path: Path = CERT_DIR / "dkim.txt"   # the TXT record's data, one line: "v=DKIM1; k=rsa; p=..."
    verify_source: str = "127.0.0.3"         # a client address OpenDKIM does not count as internal

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def txt(self) -> str:
        return self.txt_path.read_text().strip()

    def dnsmasq_option(self) -> str:
        """A dnsmasq --txt-record argument serving the key as strings of at most 255 octets (RFC 6376 s 3.6.2.2).
        For a command line (tests/integration/dnsmasq.py): unquoted, as dnsmasq keeps quotes there; in a
        dnsmasq config file each string would need its double quotes (the data has spaces and semicolons)."""
        data = self.txt()
        parts = [data[i:i + 255] for i in range(0, len(data), 255)]
        return f"--txt-record={self.record_name}," + ",".join(parts)


DKIM = Dkim()


def in_ci() -> bool:
    """Whether the CI variable is set (to anything but an empty string, 0, false or no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def banner(host: str, port: int, timeout: float = 3.0, tries: int = 4) -> str | None:
    """The first line a server sends (without CRLF), or None when nothing answers. Asked again a few times:
    a server being reloaded by another test run, or at its process limit for a moment, is not missing."""
    for attempt in range(tries):
        if attempt:
            time.sleep(1.0)
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                line = sock.makefile("rb").readline(512)
                sock.sendall(b"QUIT\r\n")
        except OSError:
            continue
        if line:
            return line.decode("ascii", "replace").rstrip("\r\n")
    return None


def missing(reason: str) -> None:
    """Skip the calling test, or fail it when CI is set: there every server must be running."""
    import pytest

    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)")
    pytest.skip(reason)


def require_dovecot(dovecot: Dovecot = DOVECOT) -> Dovecot:
    """Dovecot if it answers IMAP on its port; else skip, or fail in CI."""
    line = banner(dovecot.host, dovecot.imap_port)
    if line is None or not line.startswith("* OK") or "Dovecot" not in line:
        missing(f"Dovecot does not answer IMAP on {dovecot.host}:{dovecot.imap_port} (got {line!r}): "
                "run scripts/test-env.sh as root")
    return dovecot


def ehlo_lines(host: str, port: int, timeout: float = 5.0) -> list[str]:
    """The lines of the server's reply to EHLO (without codes), or [] when it gives none."""
    import smtplib

    try:
        with smtplib.SMTP(host, port, local_hostname="client.smtprun.test", timeout=timeout) as smtp:
            code, text = smtp.ehlo()
    except (OSError, smtplib.SMTPException):
        return []
    return text.decode("ascii", "replace").splitlines() if code == 250 else []


def require_smtp(server: SmtpServer) -> SmtpServer:
    """The server if it answers 220 with its software's name (or, where its banner does not name it, an
    EHLO reply that does); else skip, or fail in CI."""
    line = banner(server.host, server.port)
    named = line is not None and line.startswith("220") and (
        server.ehlo_mark in ehlo_lines(server.host, server.port) if server.ehlo_mark else server.software in line)
    if not named:
        missing(f"{server.software} does not answer on {server.host}:{server.port} (got {line!r}): "
                "run scripts/test-env.sh as root")
    return server
