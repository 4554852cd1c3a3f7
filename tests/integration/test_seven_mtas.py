"""Each of the seven real SMTP servers of the test environment (tests/support/mtas.py ALL_SMTP_SERVERS:
Postfix, Exim, OpenSMTPD, Sendmail, ...) answers as a small site does: a banner naming its software,
EHLO, STARTTLS with a certificate the test CA verifies, AUTH under TLS where it offers it, a message to
alice accepted and found in her mailbox (Maildir, or Sendmail's mbox), and relaying refused.
Then the same with smtprun's plans: expect_delivery finds the message in each server's mailbox (maildir:
or mbox:), a delivery receipt (RFC 3461) comes back where the server offers DSN, and Courier's limit of
connections per client is met the way smtprun says it is.
A server that does not answer skips its tests, or fails them when CI is set.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from email.message import EmailMessage

import pytest

from tests.support.cli import ROOT, run, write_plan
from tests.support.mtas import (
    ALL_SMTP_SERVERS,
    CA_PATH,
    COURIER,
    HOSTNAME,
    SmtpServer,
    banner,
    ehlo_lines,
    find_delivered,
    require_smtp,
)

pytestmark = pytest.mark.timeout(60)

every_server = pytest.mark.parametrize("server", ALL_SMTP_SERVERS, ids=[s.name for s in ALL_SMTP_SERVERS])
with_auth = pytest.mark.parametrize("server", [s for s in ALL_SMTP_SERVERS if s.auth],
                                    ids=[s.name for s in ALL_SMTP_SERVERS if s.auth])


def tls_context() -> ssl.SSLContext:
    """A client context that trusts only the test CA, with Python 3.13's strict X.509 checks on any Python."""
    context = ssl.create_default_context(cafile=str(CA_PATH))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def connect(server: SmtpServer, source: str | None = None) -> smtplib.SMTP:
    smtp = smtplib.SMTP(server.host, server.port, local_hostname="client.smtprun.test", timeout=30,
                        source_address=(source, 0) if source else None)
    code, _ = smtp.ehlo()
    assert code == 250
    return smtp


def under_tls(server: SmtpServer) -> smtplib.SMTP:
    smtp = connect(server)
    code, _ = smtp.starttls(context=tls_context())  # verifies the chain and the name 127.0.0.1
    assert code == 220
    assert smtp.ehlo()[0] == 250
    return smtp


@every_server
def test_banner_names_the_software_and_the_host(server):
    require_smtp(server)
    line = banner(server.host, server.port)
    assert line is not None and line.startswith(f"220 {HOSTNAME} ESMTP"), line
    if server.ehlo_mark:  # Courier's greeting is the host and ESMTP, no more; its EHLO names it
        assert line == f"220 {HOSTNAME} ESMTP"
        assert server.ehlo_mark in ehlo_lines(server.host, server.port)
    else:
        assert server.software in line


@every_server
def test_ehlo_answers_with_its_name_and_offers_starttls(server):
    require_smtp(server)
    with connect(server) as smtp:
        assert smtp.ehlo_resp.decode().startswith(HOSTNAME), smtp.ehlo_resp
        assert smtp.has_extn("starttls")
        assert smtp.has_extn("8bitmime")
        assert smtp.has_extn("auth") == server.auth_before_tls  # RFC 4954 §4: wait for TLS
        assert smtp.has_extn("dsn") == server.dsn


@every_server
def test_starttls_verifies_with_the_test_ca(server):
    require_smtp(server)
    with under_tls(server) as smtp:
        cert = smtp.sock.getpeercert()
        assert ("DNS", HOSTNAME) in cert["subjectAltName"]
        assert smtp.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert not smtp.has_extn("starttls"), "STARTTLS offered again once TLS is in force (RFC 3207 §4.2)"
        assert smtp.has_extn("auth") == server.auth


@with_auth
def test_auth_plain_and_login_under_tls(server):
    require_smtp(server)
    smtp = under_tls(server)
    try:
        assert set(smtp.esmtp_features["auth"].upper().split()) >= {"PLAIN", "LOGIN"}
        smtp.user, smtp.password = server.login_name("alice"), "not-the-password"
        with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
            smtp.auth("PLAIN", smtp.auth_plain)
        assert wrong.value.smtp_code == 535
    finally:
        smtp.close()  # no QUIT: Courier's tarpit would hold its reply for several seconds more
    for mechanism in ("PLAIN", "LOGIN"):
        with under_tls(server) as smtp:
            smtp.user, smtp.password = server.login_name("alice"), server.users["alice"]
            authobject = smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login
            code, text = smtp.auth(mechanism, authobject, initial_response_ok=mechanism == "PLAIN")
            assert code == 235, (mechanism, text)


@every_server
def test_a_message_to_alice_is_delivered_to_her_mailbox(server):
    require_smtp(server)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "bob@smtprun.test", "alice@smtprun.test", "smtprun seven MTAs"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@client.smtprun.test>"
    msg.set_content(f"A message for alice through {server.software}.\n")
    with connect(server) as smtp:
        assert smtp.send_message(msg) == {}
    delivered = find_delivered(server, "alice", msg["Message-ID"])
    assert delivered is not None, f"not in {server.mailbox_path('alice')} within 15 s; see {server.logs}"
    assert f"through {server.software}.".encode() in delivered
    assert b"Subject: smtprun seven MTAs" in delivered


@every_server
def test_relaying_is_refused(server):
    require_smtp(server)
    with connect(server, source=server.relay_source) as smtp:
        assert smtp.mail("bob@smtprun.test")[0] == 250
        code, text = smtp.rcpt("someone@example.org")
        assert code == server.relay_code, (code, text)
        assert 500 <= code < 600


# --- the same through smtprun's plans ---------------------------------------------------------------

ROUND_TRIP = """\
target: {{host: 127.0.0.1, port: {port}, timeout: 30}}
vars: {{mailbox: "", sender_mailbox: "", notify: ""}}  # given with --var
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - send: "MAIL FROM:<bob@smtprun.test>{{{{ ' RET=HDRS ENVID=' ~ message_id if notify else '' }}}}"
    expect: 250
  - send: "RCPT TO:<alice@smtprun.test>{{{{ ' NOTIFY=' ~ notify if notify else '' }}}}"
    expect: 250
  - send: DATA
    expect: 354
  - data: |
      Message-ID: <{{{{ message_id }}}}>
      From: bob@smtprun.test
      To: alice@smtprun.test
      Subject: smtprun round trip through {software}

      A message for alice, found again by smtprun.
    expect: 250
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: "{{{{ mailbox }}}}"
      within: 20
      headers: {{Subject: "^smtprun round trip through {software}$"}}
      body: found again by smtprun
  - expect_dsn: {{mailbox: "{{{{ sender_mailbox }}}}", within: 30, action: delivered, status: 2.x.x}}
    when: notify
"""


def round_trip(server: SmtpServer, tmp_path, *options: str) -> tuple[int, str]:
    plan = write_plan(tmp_path, ROUND_TRIP.format(port=server.port, software=server.software))
    code, out, err = run(plan, "--no-report", "--var", f"mailbox={server.mailbox_url('alice')}",
                         "--var", f"sender_mailbox={server.mailbox_url('bob')}", *options)
    return code, out + err


@every_server
def test_expect_delivery_finds_the_message_in_each_servers_mailbox(server, tmp_path):
    require_smtp(server)
    code, out = round_trip(server, tmp_path)
    assert code == 0, out
    assert "1 passed" in out


@pytest.mark.parametrize("server", [s for s in ALL_SMTP_SERVERS if s.dsn],
                         ids=[s.name for s in ALL_SMTP_SERVERS if s.dsn])
def test_a_delivery_receipt_comes_back_to_the_senders_mailbox(server, tmp_path):
    require_smtp(server)
    code, out = round_trip(server, tmp_path, "--var", "notify=SUCCESS,FAILURE")
    assert code == 0, out
    assert "1 passed" in out


def test_courier_closes_connections_past_its_limit_per_client_and_smtprun_says_so(tmp_path):
    """Courier's MAXPERIP=5: the smuggling plan's nine cases at once (--per-host 9) meet closed connections,
    each named as such; with smtprun's default of 4 at once, all nine pass (tests/integration/test_plan_headers.py)."""
    courier = require_smtp(COURIER)
    code, out, err = run(str(ROOT / "plans/smuggling.yaml"), "--host", f"{courier.host}:{courier.port}",
                         "--var", "sender=bob@smtprun.test", "--var", "rcpt=alice@smtprun.test",
                         "--per-host", "9", "--no-report")
    assert code == 1, out + err
    closed = out.count("connection closed by the server before its banner, while ")
    assert closed >= 9 - courier.max_per_ip, out
    assert "the server may limit connections per client (--per-host lowers how many smtprun opens at once)" in out
    assert out.count("verdict: not vulnerable") == 9 - closed
