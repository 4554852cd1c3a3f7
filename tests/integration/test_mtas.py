"""The real mail servers scripts/test-env.sh starts answer as tests/support/mtas.py says they do.

Postfix on 127.0.0.1:25, Exim 4.96 on 127.0.0.1:2525 and OpenSMTPD 7.4 on 127.0.0.1:2527 (both in chroots).
A server that does not answer skips its tests, or fails them when CI is set.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.support.mtas import CA_PATH, EXIM, HOSTNAME, OPENSMTPD, SMTP_SERVERS, SmtpServer, banner, require_smtp

pytestmark = pytest.mark.timeout(60)

by_name = pytest.mark.parametrize("server", SMTP_SERVERS, ids=[s.name for s in SMTP_SERVERS])
with_auth = pytest.mark.parametrize("server", [s for s in SMTP_SERVERS if s.auth],
                                    ids=[s.name for s in SMTP_SERVERS if s.auth])


def tls_context() -> ssl.SSLContext:
    """A client context that trusts only the test CA, with Python 3.13's strict X.509 checks on any Python."""
    context = ssl.create_default_context(cafile=str(CA_PATH))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def connect(server: SmtpServer) -> smtplib.SMTP:
    smtp = smtplib.SMTP(server.host, server.port, local_hostname="client.smtprun.test", timeout=20)
    code, _ = smtp.ehlo()
    assert code == 250
    return smtp


def message(to: str, sender: str = "bob@smtprun.test") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, "smtprun test_mtas"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@client.smtprun.test>"
    msg.set_content("A message from tests/integration/test_mtas.py.\n")
    return msg


def find_in_maildir(maildir: Path, message_id: str, seconds: float = 15.0) -> Path | None:
    """The file in maildir's new/ or cur/ that holds message_id, waiting up to `seconds` for it."""
    deadline = time.monotonic() + seconds
    needle = message_id.encode()
    while True:
        for sub in ("new", "cur"):
            try:
                entries = list((maildir / sub).iterdir())
            except FileNotFoundError:
                continue
            for path in entries:
                try:
                    if needle in path.read_bytes():
                        return path
                except FileNotFoundError:
                    continue  # moved from new/ to cur/ meanwhile
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)


@by_name
def test_banner_names_the_software_and_host(server):
    require_smtp(server)
    line = banner(server.host, server.port)
    assert line is not None and line.startswith(f"220 {HOSTNAME} ESMTP"), line
    assert server.software in line


@by_name
def test_ehlo_offers_starttls(server):
    require_smtp(server)
    with connect(server) as smtp:
        assert smtp.has_extn("starttls")
        assert smtp.has_extn("size") and smtp.has_extn("8bitmime")
        assert not smtp.has_extn("auth"), "AUTH must wait for TLS"
        if server is EXIM or server is OPENSMTPD:
            assert smtp.has_extn("dsn")


@by_name
def test_mail_to_alice_is_accepted(server):
    require_smtp(server)
    msg = message("alice@smtprun.test")
    with connect(server) as smtp:
        assert smtp.send_message(msg) == {}
    if server.root != Path("/") and os.access(server.maildir("alice").parent, os.R_OK | os.X_OK):
        path = find_in_maildir(server.maildir("alice"), msg["Message-ID"])
        assert path is not None, f"not delivered to {server.maildir('alice')} within 15 s; see {server.logs}"
        path.unlink()


@by_name
def test_starttls_verifies_with_the_test_ca(server):
    require_smtp(server)
    with connect(server) as smtp:
        code, _ = smtp.starttls(context=tls_context())  # verifies the chain and the name 127.0.0.1
        assert code == 220
        cert = smtp.sock.getpeercert()
        assert ("DNS", HOSTNAME) in cert["subjectAltName"]
        assert smtp.ehlo()[0] == 250


@by_name
def test_relay_is_refused(server):
    require_smtp(server)
    with connect(server) as smtp:
        assert smtp.mail("bob@smtprun.test")[0] == 250
        code, text = smtp.rcpt("someone@example.org")
        assert code == server.relay_code, (code, text)
        assert 500 <= code < 600


@with_auth
def test_auth_after_starttls(server):
    require_smtp(server)
    with connect(server) as smtp:
        smtp.starttls(context=tls_context())
        smtp.ehlo()
        assert set(smtp.esmtp_features["auth"].split()) >= {"PLAIN", "LOGIN"}
        with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
            smtp.login("alice", "not-the-password")
        assert wrong.value.smtp_code == 535
    for mechanism in ("PLAIN", "LOGIN"):
        with connect(server) as smtp:
            smtp.starttls(context=tls_context())
            smtp.ehlo()
            smtp.user, smtp.password = "alice", server.users["alice"]
            authobject = smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login
            code, _ = smtp.auth(mechanism, authobject, initial_response_ok=mechanism == "PLAIN")
            assert code == 235
