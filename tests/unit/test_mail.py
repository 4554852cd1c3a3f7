"""The closed loop's parts that need no server: mailbox URLs, DSN parsing, Message-ID, plan checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import PlanError
from runner.mail import dsn, msgid
from runner.mail.auth import authentication_results
from runner.mail.url import parse_mailbox
from runner.plan import read_plan
from runner.plan.scope import Scope, new_message_id


@pytest.mark.parametrize(("text", "shown"), [
    ("imap://alice@mail.example.com/INBOX", "imap://alice@mail.example.com:143/INBOX"),
    ("imaps://alice@mail.example.com", "imaps://alice@mail.example.com:993/INBOX"),
    ("imap://alice%40example.com@[::1]:1143/Junk%20Mail", "imap://alice@example.com@[::1]:1143/Junk Mail"),
    ("pop3s://bob@127.0.0.1", "pop3s://bob@127.0.0.1:995"),
    ("maildir:/home/alice/Maildir#Junk", "maildir:/home/alice/Maildir#Junk"),
    ("listen://127.0.0.1:2600", "listen://127.0.0.1:2600"),
])
def test_mailbox_urls(text, shown):
    assert str(parse_mailbox(text)) == shown


@pytest.mark.parametrize(("text", "why"), [
    ("imap://alice:hunter2@host/INBOX", "a password does not belong in the URL"),
    ("imap://host/INBOX", "no user"),
    ("pop3://bob@host/INBOX", "POP3 has one mailbox, no folders"),
    ("maildir:relative/Maildir", "needs an absolute path"),
    ("listen://192.0.2.1:2600", "only on a loopback address"),
    ("listen://127.0.0.1", "needs a port"),
    ("imap://alice@host:99999/", "out of range"),
    ("http://example.com", "expected a URL starting imap:"),
])
def test_bad_mailbox_urls_say_what_is_wrong(text, why):
    with pytest.raises(ValueError, match=why) as info:
        parse_mailbox(text)
    assert "hunter2" not in str(info.value)


def test_message_ids_are_unique_and_name_the_domain():
    ids = {new_message_id("client.example.com") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("smtprun.") and i.endswith("@client.example.com") for i in ids)
    assert new_message_id("{{ host }}").endswith("@smtprun.invalid")


def test_each_case_has_its_own_message_id(tmp_path: Path):
    (tmp_path / "p.yaml").write_text("vars: {helo: c.test}\nmatrix: {n: [1, 2]}\n"
                                     "steps:\n  - send: NOOP {{ message_id }}\n")
    plan = read_plan(tmp_path / "p.yaml")
    scope = Scope.for_plan(plan)
    first, second = (scope.for_case(plan, case).values["message_id"] for case in plan.cases)
    assert first != second and first.endswith("@c.test")


def test_message_id_added_only_where_missing():
    assert msgid.header_of(b"Subject: x\r\nMessage-Id: <a@b>\r\n\r\nbody")
    assert not msgid.header_of(b"Subject: x\r\n\r\nMessage-ID: <in the body@b>\r\n")
    assert msgid.add_header(b"Subject: x\r\n\r\nhi", "i@d") == b"Message-ID: <i@d>\r\nSubject: x\r\n\r\nhi"
    assert msgid.add_header(b"just text\r\n", "i@d") == b"Message-ID: <i@d>\r\n\r\njust text\r\n"


REPORT = b"""\
From: MAILER-DAEMON@mx.test
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

The mail system said no.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.test
Original-Envelope-Id: smtprun.1.abc@c.test

Final-Recipient: rfc822; nobody@bounce.test
Original-Recipient: rfc822;nobody@bounce.test
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 no such user

--B
Content-Type: text/rfc822-headers

Message-ID: <smtprun.1.abc@c.test>
Subject: hello

--B--
"""


def test_a_dsn_is_read_field_by_field():
    report = dsn.parse_dsn(REPORT)
    assert report.envelope_id == "smtprun.1.abc@c.test"
    assert report.returned_ids == ["smtprun.1.abc@c.test"]
    (rcpt,) = report.recipients
    assert (rcpt.final, rcpt.action, rcpt.status) == ("nobody@bounce.test", "failed", "5.1.1")
    assert rcpt.diagnostic == "smtp; 550 5.1.1 no such user"
    assert dsn.about(report, "smtprun.1.abc@c.test") and not dsn.about(report, "other@c.test")


@pytest.mark.parametrize(("change", "why"), [
    ((b"multipart/report; report-type=delivery-status; boundary=\"B\"", b"text/plain"),
     "not a delivery status notification: Content-Type is text/plain, not multipart/report"),
    ((b"report-type=delivery-status", b"report-type=disposition-notification"),
     "multipart/report with report-type='disposition-notification', not delivery-status (RFC 3464 §2)"),
    ((b"Status: 5.1.1\n", b""), "per-recipient block 1 lacks Status (required by RFC 3464 §2.3)"),
    ((b"Action: failed", b"Action: exploded"),
     "per-recipient block 1: Action 'exploded' is not one of failed, delayed, delivered, relayed, expanded"),
    ((b"Status: 5.1.1", b"Status: 550"), "per-recipient block 1: Status '550' is not an RFC 3463 code (like 5.1.1)"),
    ((b"Content-Type: message/delivery-status", b"Content-Type: text/plain"),
     "the report has no message/delivery-status part (RFC 3464 §2)"),
])
def test_a_malformed_dsn_says_what_is_wrong(change, why):
    with pytest.raises(dsn.DsnError) as info:
        dsn.parse_dsn(REPORT.replace(*change))
    assert str(info.value) == why


@pytest.mark.parametrize(("want", "got", "match"), [
    ("5.1.1", "5.1.1", True), ("5.x.x", "5.7.1", True), ("5.1.x", "5.1.10", True),
    ("5.x.x", "4.4.1", False), ("2.0.0", "2.0.1", False),
])
def test_status_codes_match_with_x(want, got, match):
    assert dsn.status_matches(want, got) is match


def test_authentication_results_are_read():
    results = authentication_results(["mx.test; spf=pass (sender ok) smtp.mailfrom=a.test;\r\n"
                                      " dkim=fail (bad sig) header.d=a.test; dmarc=none"])
    assert [(r.authserv_id, r.method, r.result) for r in results] == [
        ("mx.test", "spf", "pass"), ("mx.test", "dkim", "fail"), ("mx.test", "dmarc", "none")]
    assert results[0].properties == "smtp.mailfrom=a.test"


def _plan_error(tmp_path: Path, step: str) -> str:
    (tmp_path / "p.yaml").write_text("steps:\n  - expect: 220\n" + step)
    with pytest.raises(PlanError) as info:
        read_plan(tmp_path / "p.yaml")
    return str(info.value)


def test_plan_errors_name_the_line(tmp_path: Path):
    text = _plan_error(tmp_path, "  - expect_delivery: {mailbox: 'imap://a:pw@h/INBOX'}\n")
    assert f"{tmp_path / 'p.yaml'}:3:" in text and "a password does not belong in the URL" in text
    text = _plan_error(tmp_path, "    capture: {port: '(\\d+)'}\n"
                                 "  - expect_delivery: {mailbox: 'listen://127.0.0.1:{{ port }}'}\n")
    assert f"{tmp_path / 'p.yaml'}:4:" in text and "a listen:// mailbox cannot use port: smtprun starts" in text
    text = _plan_error(tmp_path, "  - expect_delivery: {mailbox: 'maildir:/m', tls: true}\n")
    assert "tls: is for a listen:// mailbox, not maildir:" in text
    text = _plan_error(tmp_path, "  - expect_dsn: {mailbox: 'maildir:/m', status: '5.1'}\n")
    assert ":3:" in text
    text = _plan_error(tmp_path, "  - expect_delivery: {mailbox: 'maildir:/m', body: '('}\n")
    assert "bad regex '('" in text


def test_authentication_results_are_read_from_the_trusted_authserv_id_only() -> None:
    from runner.mail.auth import check_results

    ours = "mx.example.test; dkim=pass header.d=example.test; spf=fail smtp.mailfrom=example.test"
    theirs = "evil.example; dkim=pass header.d=example.test; spf=pass"
    assert check_results([theirs, ours], "MX.example.test", {"dkim": "pass"}) == []
    assert check_results([theirs, ours], "mx.example.test", {"spf": "pass"}) == [
        "Authentication-Results: mx.example.test says spf=fail (smtp.mailfrom=example.test), expected spf=pass"]
    assert check_results([theirs], "mx.example.test", {"dkim": "pass"}) == [
        "Authentication-Results: no dkim result from mx.example.test; fields from evil.example are not trusted "
        "(RFC 8601 §5)"]
    assert check_results([], "mx.example.test", {"dmarc": "pass"}) == [
        "Authentication-Results: no dmarc result from mx.example.test; the delivered copy has no "
        "Authentication-Results field from it"]
    assert check_results([theirs], "mx.example.test", {"dkim": "pass", "spf": "pass"}) == [  # said once
        "Authentication-Results: no dkim or spf result from mx.example.test; fields from evil.example are not "
        "trusted (RFC 8601 §5)"]
    # two signatures, one verifies: that field gives dkim=pass
    two = "mx.example.test 1; dkim=fail header.d=a.test; dkim=pass (2048-bit key) header.d=b.test"
    assert check_results([two], "mx.example.test", {"dkim": "pass"}) == []
    # a field claiming our authserv-id below our own, disagreeing: written before us, not removed
    forged = "mx.example.test; dkim=fail"
    assert check_results([ours, forged], "mx.example.test", {"dkim": "pass"}) == [
        "Authentication-Results: mx.example.test says dkim=pass, but a field below it claiming mx.example.test "
        "says dkim=fail (written before it: a border MTA should remove such fields, RFC 8601 §5)"]


def test_a_report_sent_as_multipart_mixed_is_read_and_said_to_be_nonconformant():
    """OpenSMTPD 7.4 sends its "delivered" notice as multipart/mixed with a message/delivery-status part."""
    mixed = REPORT.replace(b"multipart/report; report-type=delivery-status", b"multipart/mixed")
    report = dsn.parse_dsn(mixed)
    assert [(r.final, r.action, r.status) for r in report.recipients] == [("nobody@bounce.test", "failed", "5.1.1")]
    assert report.nonconformant == ("Content-Type is multipart/mixed, not multipart/report; "
                                    "report-type=delivery-status (RFC 3464 §2, RFC 6522 §3); its "
                                    "message/delivery-status part was read all the same")
    assert dsn.parse_dsn(REPORT).nonconformant is None
    without = mixed.replace(b"Content-Type: message/delivery-status", b"Content-Type: text/plain")
    with pytest.raises(dsn.DsnError, match=r"^not a delivery status notification: Content-Type is multipart/mixed"):
        dsn.parse_dsn(without)
