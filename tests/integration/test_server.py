"""The embedded server, seen from a plain smtplib client on loopback."""

from __future__ import annotations

import email.utils
import io
import logging
import re
import smtplib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from runner.tools import server as server_module
from runner.tools.profiles import PROFILES, REPLY_KEYS
from runner.tools.server import EmbeddedServer, ServerAuth, ServerTls

USER, PASSWORD = "alice", "s3cret pass"
MESSAGE = b"Subject: test message\r\n\r\nbody line\r\n"


@contextmanager
def session(server: EmbeddedServer) -> Iterator[smtplib.SMTP]:
    client = smtplib.SMTP(server.host, server.port, timeout=5)
    try:
        yield client
    finally:
        client.close()


def ehlo_lines(client: smtplib.SMTP) -> list[str]:
    code, text = client.ehlo("client.example")
    assert code == 250
    return text.decode().split("\n")


def send_data(client: smtplib.SMTP, wire: bytes) -> tuple[tuple[int, bytes], tuple[int, bytes]]:
    """DATA, then ``wire`` exactly as given (already dot-stuffed, ending in CRLF.CRLF)."""
    go = client.docmd("DATA")
    client.send(wire)
    return go, client.getreply()


def test_every_profile_words_every_reply() -> None:
    for profile in PROFILES.values():
        assert set(profile.replies) == REPLY_KEYS, profile.name
        assert profile.replies["banner"].startswith("220 {host} "), profile.name


@pytest.mark.parametrize(
    ("profile", "banner"),
    [
        ("default", r"mail\.smtprun\.test smtprun ESMTP ready"),
        ("exchange", r"mail\.contoso\.com Microsoft ESMTP MAIL Service ready at (?P<date>.+)"),
        ("postfix", r"mail\.smtprun\.test ESMTP Postfix \(Debian/GNU\)"),
    ],
)
def test_banner_names_the_server(profile: str, banner: str) -> None:
    with EmbeddedServer(profile=profile) as server:
        client = smtplib.SMTP(timeout=5)
        try:
            code, text = client.connect(server.host, server.port)
        finally:
            client.close()
    assert code == 220
    match = re.fullmatch(banner, text.decode())
    assert match, text
    if "date" in match.groupdict():
        assert email.utils.parsedate_to_datetime(match["date"]).tzinfo is not None


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("default", ["mail.smtprun.test", "SIZE 33554432", "PIPELINING", "8BITMIME", "SMTPUTF8", "DSN",
                     "ENHANCEDSTATUSCODES", "HELP"]),
        ("exchange", ["mail.contoso.com Hello [127.0.0.1]", "SIZE 37748736", "PIPELINING", "DSN",
                      "ENHANCEDSTATUSCODES", "8BITMIME"]),
        ("postfix", ["mail.smtprun.test", "PIPELINING", "SIZE 10240000", "VRFY", "ENHANCEDSTATUSCODES",
                     "8BITMIME", "DSN", "SMTPUTF8"]),
    ],
)
def test_ehlo_lists_the_profile_keywords(profile: str, expected: list[str]) -> None:
    with EmbeddedServer(profile=profile) as server, session(server) as client:
        assert ehlo_lines(client) == expected


@pytest.mark.parametrize(
    ("profile", "replies", "queued"),
    [
        ("default", ["250 2.1.0 Sender OK", "250 2.1.5 Recipient OK", "354 End data with <CR><LF>.<CR><LF>",
                     "221 2.0.0 Bye"], r"250 2\.0\.0 Ok: queued as [0-9A-F]{10}"),
        ("exchange", ["250 2.1.0 Sender OK", "250 2.1.5 Recipient OK", "354 Start mail input; end with <CRLF>.<CRLF>",
                      "221 2.0.0 Service closing transmission channel"],
         r"250 2\.6\.0 <[0-9a-f-]{36}@mail\.contoso\.com> \[InternalId=\d+, Hostname=mail\.contoso\.com\] "
         r"Queued mail for delivery"),
        ("postfix", ["250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>", "221 2.0.0 Bye"],
         r"250 2\.0\.0 Ok: queued as [0-9A-F]{10}"),
    ],
)
def test_transaction_replies_are_the_profile_words(profile: str, replies: list[str], queued: str) -> None:
    with EmbeddedServer(profile=profile) as server, session(server) as client:
        ehlo_lines(client)
        mail, rcpt = client.docmd("MAIL FROM:<admin@test.com>"), client.docmd("RCPT TO:<user@contoso.com>")
        go, done = send_data(client, MESSAGE + b".\r\n")
        bye = client.docmd("QUIT")
    assert [f"{code} {text.decode()}" for code, text in (mail, rcpt, go, bye)] == replies
    assert re.fullmatch(queued, f"{done[0]} {done[1].decode()}"), done
    assert server.messages[0].data == MESSAGE


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_dsn_parameters_are_accepted_and_recorded_as_sent(profile: str) -> None:
    with EmbeddedServer(profile=profile) as server, session(server) as client:
        refused = client.sendmail(
            "admin@test.com", ["User@contoso.com"], MESSAGE,
            mail_options=["RET=HDRS", "ENVID=QQ314159"],
            rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;User@Contoso.com"],
        )
    assert refused == {}
    received = server.messages[0]
    assert received.mail_options[-2:] == ("RET=HDRS", "ENVID=QQ314159")
    assert received.rcpt_options == ("NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;User@Contoso.com")


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("RCPT TO:<a@example.com> NOTIFY=SOMETIMES", (501, b"5.5.4 Bad NOTIFY parameter syntax")),
        ("RCPT TO:<a@example.com> NOTIFY=NEVER,SUCCESS", (501, b"5.5.4 Bad NOTIFY parameter syntax")),
        ("RCPT TO:<a@example.com> ORCPT=a@example.com", (501, b"5.5.4 Bad ORCPT parameter syntax")),
        ("RCPT TO:<a@example.com> RET=FULL", (555, b"5.5.4 Unsupported option: RET=FULL")),
        ("RCPT TO:<a@example.com> NOTIFY=NEVER", (250, b"2.1.5 Recipient OK")),
    ],
)
def test_bad_dsn_parameters_are_refused(embedded: EmbeddedServer, command: str, reply: tuple) -> None:
    with session(embedded) as client:
        ehlo_lines(client)
        assert client.docmd("MAIL FROM:<s@example.com>")[0] == 250
        assert client.docmd(command) == reply


def test_dsn_parameters_on_mail_are_checked(embedded: EmbeddedServer) -> None:
    with session(embedded) as client:
        ehlo_lines(client)
        assert client.docmd("MAIL FROM:<s@example.com> RET=BODY") == (501, b"5.5.4 Bad RET parameter syntax")
        assert client.docmd("MAIL FROM:<s@example.com> NOTIFY=NEVER") == (
            555, b"5.5.4 Unsupported option: NOTIFY=NEVER")
        assert client.docmd(f"MAIL FROM:<s@example.com> ENVID={'x' * 101}") == (
            501, b"5.5.4 Bad ENVID parameter syntax")


def test_lines_starting_with_a_dot_arrive_unstuffed(embedded: EmbeddedServer) -> None:
    body = b"Subject: dots\r\n\r\n.\r\n..x\r\n.x\r\nend\r\n"
    wire = b"Subject: dots\r\n\r\n..\r\n...x\r\n..x\r\nend\r\n.\r\n"  # RFC 5321 s 4.5.2
    with session(embedded) as client:
        ehlo_lines(client)
        client.docmd("MAIL FROM:<s@example.com>")
        client.docmd("RCPT TO:<r@example.com>")
        _, (code, _) = send_data(client, wire)
    assert code == 250
    assert embedded.messages[0].data == body


@pytest.mark.parametrize("local", ["unknown", "nosuchuser", "NoSuchUser42"])
def test_unknown_user_is_refused_and_the_transaction_goes_on(embedded: EmbeddedServer, local: str) -> None:
    with session(embedded) as client:
        ehlo_lines(client)
        client.docmd("MAIL FROM:<s@example.com>")
        assert client.docmd(f"RCPT TO:<{local}@example.com>") == (
            550, f"5.1.1 <{local}@example.com>: Recipient address rejected: User unknown".encode())
        assert client.docmd("RCPT TO:<known@example.com>")[0] == 250
        assert send_data(client, MESSAGE + b".\r\n")[1][0] == 250
    assert embedded.messages[0].rcpt_tos == ("known@example.com",)


@pytest.mark.parametrize(
    ("profile", "reply"),
    [
        ("exchange", (550, b"5.7.54 SMTP; Unable to relay recipient in non-accepted domain")),
        ("postfix", (554, b"5.7.1 <x@example.org>: Relay access denied")),
        ("default", (250, b"2.1.5 Recipient OK")),
    ],
)
def test_relay_is_refused_where_the_profile_restricts_it(profile: str, reply: tuple) -> None:
    with EmbeddedServer(profile=profile) as server, session(server) as client:
        ehlo_lines(client)
        client.docmd("MAIL FROM:<s@example.com>")
        assert client.docmd("RCPT TO:<x@example.org>") == reply
        assert client.docmd("RCPT TO:<x@Contoso.COM>")[0] == 250


def test_authenticated_client_may_relay() -> None:
    with EmbeddedServer(profile="exchange", auth=ServerAuth(USER, PASSWORD, require_tls=False)) as server, \
            session(server) as client:
        client.login(USER, PASSWORD)
        client.docmd("MAIL FROM:<s@example.com>")
        assert client.docmd("RCPT TO:<x@example.org>") == (250, b"2.1.5 Recipient OK")


def test_aiosmtpd_errors_carry_enhanced_status_codes(embedded: EmbeddedServer) -> None:
    with session(embedded) as client:
        ehlo_lines(client)
        assert client.docmd("RCPT TO:<r@example.com>") == (503, b"5.5.1 Error: need MAIL command")
        code, text = client.docmd("FROB")
        assert code == 500 and text.startswith(b"5.5.2 "), text


@pytest.mark.parametrize(
    ("profile", "reply"),
    [("default", b"2.0.0 Ready to start TLS"), ("exchange", b"2.0.0 SMTP server ready")],
)
def test_starttls_verifies_against_the_ca(test_ca, profile: str, reply: bytes) -> None:
    with EmbeddedServer(profile=profile, tls=ServerTls(test_ca.server_context()),
                        auth=ServerAuth(USER, PASSWORD)) as server, session(server) as client:
        before = ehlo_lines(client)
        assert "STARTTLS" in before
        assert not any(k.startswith("AUTH") for k in before)  # RFC 4954 s 4: not before TLS here
        assert client.starttls(context=test_ca.client_context()) == (220, reply)
        after = ehlo_lines(client)
        assert "STARTTLS" not in after  # RFC 3207 s 4.2
        assert "AUTH CRAM-MD5 LOGIN PLAIN XOAUTH2" in after
        assert client.login(USER, PASSWORD)[0] == 235
        assert client.sendmail("s@example.com", ["r@example.com"], MESSAGE) == {}
    assert server.messages[0].data == MESSAGE


@pytest.fixture
def auth_server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(auth=ServerAuth(USER, PASSWORD, require_tls=False)) as server:
        yield server


@pytest.mark.parametrize("initial_response", [True, False])
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_auth_succeeds(auth_server: EmbeddedServer, mechanism: str, initial_response: bool) -> None:
    with session(auth_server) as client:
        assert "AUTH CRAM-MD5 LOGIN PLAIN XOAUTH2" in ehlo_lines(client)
        client.user, client.password = USER, PASSWORD
        method = getattr(client, "auth_" + mechanism.lower().replace("-", "_"))
        assert client.auth(mechanism, method, initial_response_ok=initial_response) == (
            235, b"2.7.0 Authentication successful")


def test_a_successful_auth_logs_no_notice_meant_for_aiosmtpds_own_users(auth_server, caplog) -> None:
    """aiosmtpd warns "Session.login_data is deprecated" on every AUTH; server_session filters the notice out by
    its words, so this pins them: new words from aiosmtpd would show here."""
    with caplog.at_level(logging.WARNING, logger="mail.log"), session(auth_server) as client:
        ehlo_lines(client)
        assert client.login(USER, PASSWORD)[0] == 235
    assert [r.getMessage() for r in caplog.records if r.name == "mail.log"] == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_auth_with_a_wrong_password_gets_535(auth_server: EmbeddedServer, mechanism: str) -> None:
    with session(auth_server) as client:
        ehlo_lines(client)
        client.user, client.password = USER, "wrong"
        method = getattr(client, "auth_" + mechanism.lower().replace("-", "_"))
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.auth(mechanism, method)
    assert (refused.value.smtp_code, refused.value.smtp_error) == (
        535, b"5.7.8 Authentication credentials invalid")


def test_no_auth_is_offered_without_credentials(embedded: EmbeddedServer) -> None:
    with session(embedded) as client:
        assert not any(k.startswith("AUTH") for k in ehlo_lines(client))
        assert client.docmd("AUTH PLAIN") == (503, b"5.5.1 Error: authentication not enabled")


def test_implicit_tls(test_ca) -> None:
    with EmbeddedServer(profile="postfix", tls=ServerTls(test_ca.server_context(), implicit=True),
                        auth=ServerAuth(USER, PASSWORD)) as server:
        client = smtplib.SMTP_SSL(server.host, server.port, context=test_ca.client_context(), timeout=5)
        try:
            keywords = ehlo_lines(client)
            assert "STARTTLS" not in keywords
            assert "AUTH CRAM-MD5 LOGIN PLAIN XOAUTH2" in keywords  # RFC 8314 s 3: already encrypted
            client.login(USER, PASSWORD)
            assert client.sendmail("s@example.com", ["r@smtprun.test"], MESSAGE) == {}
        finally:
            client.close()
    assert server.messages[0].rcpt_tos == ("r@smtprun.test",)


def test_serve_prints_each_message_and_stops_on_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()

    def client_then_ctrl_c(seconds: float) -> None:
        port = int(re.search(r":(\d+) ", out.getvalue())[1])
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.sendmail("s@example.com", ["a@contoso.com", "b@contoso.com"], MESSAGE)
        raise KeyboardInterrupt

    monkeypatch.setattr(server_module.time, "sleep", client_then_ctrl_c)
    server_module.run_until_interrupted(server_module.EmbeddedServer("127.0.0.1", 0, "exchange"), out)
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"smtprun serve: listening on 127\.0\.0\.1:\d+ \(profile exchange\)", lines[0])
    assert lines[1:] == [
        f"smtprun serve: message from <s@example.com> to <a@contoso.com>, <b@contoso.com> "
        f"({len(MESSAGE)} bytes)",
        "smtprun serve: stopped",
    ]
