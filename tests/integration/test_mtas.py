"""The real mail servers scripts/test-env.sh starts answer as tests/support/mtas.py says they do.

Postfix on 127.0.0.1:25, Exim 4.96 on 127.0.0.1:2525 and OpenSMTPD 7.4 on 127.0.0.1:2527 (both in chroots);
then the mail loop around Postfix: Maildir delivery read back over IMAP and POP3 (Dovecot), DKIM signing and
verifying (OpenDKIM), a bounce DSN, the relay and discard domains.
A server that does not answer skips its tests, or fails them when CI is set.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import os
import poplib
import re
import smtplib
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from email.message import EmailMessage, Message
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import pytest

from tests.support.mtas import (
    BOUNCE_DOMAIN,
    CA_PATH,
    DISCARD_DOMAIN,
    DKIM,
    DOVECOT,
    HOSTNAME,
    POSTFIX,
    POSTFIX_LOG,
    RELAY_DOMAIN,
    RELAY_PORT,
    SMTP_SERVERS,
    USERS,
    SmtpServer,
    banner,
    missing,
    relay_port_held,
    require_dovecot,
    require_smtp,
)

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
        assert smtp.has_extn("dsn")


@by_name
def test_mail_to_alice_is_accepted(server):
    require_smtp(server)
    msg = message("alice@smtprun.test")
    with connect(server) as smtp:
        assert smtp.send_message(msg) == {}
    if os.access(server.maildir("alice").parent, os.R_OK | os.X_OK):  # root, or alice
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


# --- the mail loop around Postfix: Maildir, Dovecot, OpenDKIM, DSNs ----------------------------------

MAIL_WAIT = 30.0  # seconds for Postfix to deliver (it takes well under one here)


@contextmanager
def imap(user: str, port: int = DOVECOT.imap_port) -> Iterator[imaplib.IMAP4]:
    """A logged-in IMAP session with INBOX selected: STARTTLS on the IMAP port, implicit TLS on IMAPS."""
    if port == DOVECOT.imaps_port:
        session: imaplib.IMAP4 = imaplib.IMAP4_SSL(DOVECOT.host, port, ssl_context=tls_context(), timeout=20)
    else:
        session = imaplib.IMAP4(DOVECOT.host, port, timeout=20)
        session.starttls(ssl_context=tls_context())
    try:
        session.login(user, USERS[user])
        session.select("INBOX")
        yield session
    finally:
        with suppress(imaplib.IMAP4.error, OSError):
            session.logout()


def imap_search(session: imaplib.IMAP4, *criteria: str, seconds: float = MAIL_WAIT) -> list[bytes]:
    """The UIDs matching the search, waiting up to `seconds` until there is at least one."""
    deadline = time.monotonic() + seconds
    while True:
        session.noop()  # lets Dovecot see new files in the Maildir
        typ, data = session.uid("SEARCH", *criteria)
        assert typ == "OK", data
        uids = data[0].split()
        if uids or time.monotonic() > deadline:
            return uids
        time.sleep(0.3)


def imap_fetch(session: imaplib.IMAP4, uid: bytes) -> Message:
    typ, data = session.uid("FETCH", uid, "(BODY.PEEK[])")
    assert typ == "OK", data
    return email.message_from_bytes(data[0][1], policy=email.policy.compat32)


def imap_delete(session: imaplib.IMAP4, uids: list[bytes]) -> None:
    if uids:
        session.uid("STORE", b",".join(uids), "+FLAGS", r"(\Deleted)")
        session.expunge()


def send_via_postfix(msg: EmailMessage | bytes, sender: str, recipients: list[str], *,
                     source: str | None = None, mail_options: tuple[str, ...] = (),
                     rcpt_options: tuple[str, ...] = ()) -> str:
    """Send through Postfix on 127.0.0.1:25 (from `source` if given); returns the queue id from the 250."""
    require_smtp(POSTFIX)
    raw = msg.as_bytes(policy=email.policy.SMTP) if isinstance(msg, EmailMessage) else msg
    source_address = (source, 0) if source else None
    with smtplib.SMTP(POSTFIX.host, POSTFIX.port, local_hostname="client.smtprun.test", timeout=20,
                      source_address=source_address) as smtp:
        smtp.ehlo()
        code, text = smtp.mail(sender, list(mail_options))
        assert code == 250, text
        for rcpt in recipients:
            code, text = smtp.rcpt(rcpt, list(rcpt_options))
            assert code == 250, (rcpt, code, text)
        code, text = smtp.data(raw)
    assert code == 250, text
    queued = re.search(rb"queued as ([0-9A-Za-z]+)", text)
    assert queued, text
    return queued.group(1).decode()


def postfix_log_line(queue_id: str, needle: str, seconds: float = MAIL_WAIT) -> str | None:
    """The first line of Postfix's log about queue_id that contains needle, waiting for it."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            lines = POSTFIX_LOG.read_text(errors="replace").splitlines()[-5000:]
        except OSError as error:
            missing(f"cannot read {POSTFIX_LOG}: {error}")
        for line in lines:
            if f" {queue_id}: " in line and needle in line:
                return line
        if time.monotonic() > deadline:
            return None
        time.sleep(0.3)


@pytest.fixture(scope="module")
def to_alice() -> Iterator[str]:
    """One message bob -> alice through Postfix; its Message-ID. Deleted from alice's mailbox afterwards."""
    require_smtp(POSTFIX)
    require_dovecot()
    msg = message("alice@smtprun.test")
    send_via_postfix(msg, "bob@smtprun.test", ["alice@smtprun.test"])
    yield msg["Message-ID"]
    with imap("alice") as session:
        imap_delete(session, imap_search(session, "HEADER", "Message-ID", msg["Message-ID"], seconds=0))


def test_postfix_delivers_to_alices_maildir(to_alice):
    maildir = DOVECOT.maildir("alice")
    if not os.access(maildir.parent, os.R_OK | os.X_OK):
        pytest.skip(f"{maildir} is readable by root and alice only")
    assert find_in_maildir(maildir, to_alice, MAIL_WAIT) is not None, f"not in {maildir}; see {POSTFIX_LOG}"


@pytest.mark.parametrize("port", [DOVECOT.imap_port, DOVECOT.imaps_port], ids=["imap-starttls", "imaps"])
def test_imap_finds_the_message(to_alice, port):
    with imap("alice", port) as session:
        uids = imap_search(session, "HEADER", "Message-ID", to_alice)
        assert len(uids) == 1, f"{to_alice} not found over IMAP; see {DOVECOT.log}"
        found = imap_fetch(session, uids[0])
        assert found["Subject"] == "smtprun test_mtas"
        assert found["Delivered-To"] == "alice@smtprun.test"


def pop3_find(session: poplib.POP3, message_id: str) -> int | None:
    """The number of the message with message_id (TOP n 0 reads headers only; RFC 1939 has no search).
    A POP3 session sees the mailbox as it was at login, so wait for delivery before logging in."""
    needle = f"message-id: {message_id}".lower().encode()
    for number in range(session.stat()[0], 0, -1):
        if needle in b"\n".join(session.top(number, 0)[1]).lower():
            return number
    return None


def test_pop3s_and_pop3_stls_find_the_message(to_alice):
    with imap("alice") as session:  # delivered before the POP3 logins

        assert imap_search(session, "HEADER", "Message-ID", to_alice), "not delivered"
    pop3s = poplib.POP3_SSL(DOVECOT.host, DOVECOT.pop3s_port, context=tls_context(), timeout=20)
    try:
        pop3s.user("alice")
        pop3s.pass_(USERS["alice"])
        assert pop3_find(pop3s, to_alice) is not None, "not found over POP3S"
    finally:
        pop3s.quit()
    pop3 = poplib.POP3(DOVECOT.host, DOVECOT.pop3_port, timeout=20)
    try:
        assert "STLS" in pop3.capa()
        pop3.stls(context=tls_context())
        pop3.user("alice")
        pop3.pass_(USERS["alice"])
        assert pop3_find(pop3, to_alice) is not None, "not found over POP3 after STLS"
    finally:
        pop3.quit()


def test_dovecot_refuses_a_wrong_password():
    require_dovecot()
    session = imaplib.IMAP4(DOVECOT.host, DOVECOT.imap_port, timeout=20)
    try:
        session.starttls(ssl_context=tls_context())
        with pytest.raises(imaplib.IMAP4.error, match=r"AUTHENTICATIONFAILED|Authentication failed"):
            session.login("alice", "not-the-password")
    finally:
        session.shutdown()


def dkim_tags(header: str) -> dict[str, str]:
    return {k.strip(): re.sub(r"\s+", "", v) for k, v in (t.split("=", 1) for t in header.split(";") if "=" in t)}


def test_dkim_signs_the_signed_domain_and_verifies_on_the_way_back():
    require_dovecot()
    msg = message("alice@smtprun.test", sender=f"alice@{DKIM.domain}")
    message_id = msg["Message-ID"]
    send_via_postfix(msg, "bob@smtprun.test", ["alice@smtprun.test"])
    with imap("alice") as session:
        uids = imap_search(session, "HEADER", "Message-ID", message_id)
        try:
            assert len(uids) == 1
            signed = imap_fetch(session, uids[0])
            signature = signed["DKIM-Signature"]
            assert signature, f"no DKIM-Signature (is OpenDKIM on 127.0.0.1:{DKIM.milter_port}?)"
            tags = dkim_tags(signature)
            assert (tags["v"], tags["a"], tags["d"], tags["s"]) == ("1", "rsa-sha256", DKIM.domain, DKIM.selector)
            assert "from" in tags["h"].lower().split(":")

            # Back in from an address OpenDKIM does not count as internal: verified with the published key.
            # The delivery headers go (Postfix would see its own Delivered-To as a loop); then a tampered copy.
            for name in ("Return-Path", "Delivered-To", "X-Original-To"):
                del signed[name]
            raw = signed.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            tampered = raw.replace(b"A message from", b"A tampered message from")
            assert tampered != raw
            for data in (raw, tampered):
                send_via_postfix(data, "bob@smtprun.test", ["alice@smtprun.test"], source=DKIM.verify_source)
            deadline = time.monotonic() + MAIL_WAIT
            while len(uids := imap_search(session, "HEADER", "Message-ID", message_id)) < 3:
                assert time.monotonic() < deadline, "the re-sent copies did not arrive"
                time.sleep(0.3)
            results = {}
            for uid in uids:
                copy = imap_fetch(session, uid)
                body = copy.get_payload(decode=True) or b""
                kind = "tampered" if b"tampered" in body else "original"
                results.setdefault(kind, []).append(" ".join((copy["Authentication-Results"] or "").split()))
            verified = [r for r in results["original"] if r]
            assert len(verified) == 1 and verified[0].startswith("mail.smtprun.test;"), results
            assert f"dkim=pass (2048-bit key) header.d={DKIM.domain}" in verified[0], results
            assert len(results["tampered"]) == 1 and "dkim=fail" in results["tampered"][0], results
        finally:
            imap_delete(session, imap_search(session, "HEADER", "Message-ID", message_id, seconds=0))


def test_dkim_txt_record_is_served_by_dnsmasq(dnsmasq_factory):
    if not DKIM.txt_path.exists():
        missing(f"{DKIM.txt_path} missing: run scripts/test-env.sh as root")
    server = dnsmasq_factory(DKIM.dnsmasq_option())
    query = dns.message.make_query(DKIM.record_name + ".", "TXT")
    answer = dns.query.udp(query, server.host, port=server.port, timeout=5)
    if answer.flags & dns.flags.TC:
        answer = dns.query.tcp(query, server.host, port=server.port, timeout=5)
    records = [rr for rrset in answer.answer if rrset.rdtype == dns.rdatatype.TXT for rr in rrset]
    assert len(records) == 1
    strings = records[0].strings
    assert len(strings) > 1 and all(len(part) <= 255 for part in strings)
    data = b"".join(strings).decode()
    assert data == DKIM.txt()
    assert data.startswith("v=DKIM1; k=rsa; p=MII")


def test_bounce_domain_produces_a_failed_dsn_for_the_sender():
    require_dovecot()
    msg = message(f"nobody@{BOUNCE_DOMAIN}", sender="bob@smtprun.test")
    envid = uuid.uuid4().hex
    send_via_postfix(msg, "bob@smtprun.test", [f"nobody@{BOUNCE_DOMAIN}"],
                     mail_options=(f"ENVID={envid}", "RET=HDRS"), rcpt_options=("NOTIFY=FAILURE",))
    with imap("bob") as session:
        uids = imap_search(session, "TEXT", msg["Message-ID"])
        try:
            assert len(uids) == 1, f"no bounce for {msg['Message-ID']} in bob's mailbox; see {POSTFIX_LOG}"
            report = imap_fetch(session, uids[0])
            assert report["Subject"] == "Undelivered Mail Returned to Sender"
            assert report.get_content_type() == "multipart/report"
            assert report.get_param("report-type") == "delivery-status"
            status = next(part for part in report.walk() if part.get_content_type() == "message/delivery-status")
            per_message, per_recipient = status.get_payload()[:2]
            assert per_message["Original-Envelope-Id"] == envid
            assert per_recipient["Final-Recipient"] == f"rfc822; nobody@{BOUNCE_DOMAIN}"
            assert per_recipient["Action"] == "failed"
            assert per_recipient["Status"].startswith("5.")
            assert "smtp;" in per_recipient["Diagnostic-Code"]
            headers_part = report.get_payload()[-1]
            assert headers_part.get_content_type() == "text/rfc822-headers"  # RET=HDRS
        finally:
            imap_delete(session, uids)


def test_discard_domain_accepts_and_drops():
    queue_id = send_via_postfix(message(f"x@{DISCARD_DOMAIN}"), "bob@smtprun.test", [f"x@{DISCARD_DOMAIN}"])
    line = postfix_log_line(queue_id, f"to=<x@{DISCARD_DOMAIN}>")
    assert line is not None, f"no delivery of {queue_id} in {POSTFIX_LOG}"
    assert "status=sent" in line and "postfix/discard" in line, line


class RelaySink:
    """A minimal SMTP receiver on 127.0.0.1:RELAY_PORT (no extensions) that keeps the messages it gets."""

    def __init__(self, port: int):
        self.server = socket.create_server(("127.0.0.1", port))
        self.server.settimeout(0.2)
        self.messages: list[bytes] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                self._session(conn.makefile("rwb"))

    def _session(self, stream) -> None:
        def reply(line: bytes) -> None:
            stream.write(line + b"\r\n")
            stream.flush()
        reply(b"220 relay-sink.smtprun.test ESMTP")
        try:
            while line := stream.readline(1024):
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    reply(b"250 relay-sink.smtprun.test")
                elif verb == b"DATA":
                    reply(b"354 go ahead")
                    data = []
                    while (part := stream.readline(65536)) not in (b".\r\n", b""):
                        data.append(part)
                    self.messages.append(b"".join(data))
                    reply(b"250 2.0.0 ok")
                elif verb == b"QUIT":
                    reply(b"221 2.0.0 bye")
                    return
                else:
                    reply(b"250 2.0.0 ok")
        except OSError:
            return

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.server.close()


def test_relay_domain_goes_to_the_test_port():
    require_smtp(POSTFIX)
    with relay_port_held():
        try:
            sink = RelaySink(RELAY_PORT)
        except OSError as error:
            pytest.fail(f"cannot listen on 127.0.0.1:{RELAY_PORT}: {error}")
        try:
            msg = message(f"carol@{RELAY_DOMAIN}")
            send_via_postfix(msg, "bob@smtprun.test", [f"carol@{RELAY_DOMAIN}"])
            deadline = time.monotonic() + MAIL_WAIT
            needle = msg["Message-ID"].encode()
            while not any(needle in m for m in sink.messages):
                assert time.monotonic() < deadline, f"nothing relayed to 127.0.0.1:{RELAY_PORT}; see {POSTFIX_LOG}"
                time.sleep(0.2)
        finally:
            sink.close()
