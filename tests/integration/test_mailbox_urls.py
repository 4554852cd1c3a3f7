"""Mailbox URLs as a new user writes them: mistakes refused when the plan is read, and the common slips
against the real Dovecot (a plain scheme on a TLS port, no cafile for the test CA) named with the fix."""

from __future__ import annotations

import time

import pytest

from tests.support.cli import run, write_plan
from tests.support.mtas import DOVECOT, POSTFIX, require_dovecot, require_smtp


def plan(mailbox: str, within: float = 5, extra: str = "") -> str:
    return f"""\
target: {{host: 127.0.0.1, port: 25, timeout: 10}}
steps:
  - expect: 220
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: "{mailbox}"
      password: alice-password
      within: {within}
{extra}"""


@pytest.mark.parametrize(("mailbox", "why"), [
    ("imap:alice@127.0.0.1", "no host (write imap://USER@HOST/FOLDER)"),
    ("pop3s:alice@127.0.0.1", "no host (write pop3s://USER@HOST)"),
    ("imap://alice@127.0.0.1:0/INBOX", "port 0 names no port"),
    ("imap://127.0.0.1/INBOX", "no user (write imap://USER@127.0.0.1/...)"),
    ("imap://alice:secret@127.0.0.1/INBOX", "a password does not belong in the URL"),
    ("pop3://alice@127.0.0.1/INBOX", "POP3 has one mailbox, no folders"),
    ("maildir:Maildir", "a maildir: URL needs an absolute path"),
])
def test_a_bad_mailbox_url_is_refused_when_the_plan_is_read(tmp_path, mailbox, why):
    code, out, err = run("validate", write_plan(tmp_path, plan(mailbox)))
    assert code == 2, out + err
    assert why in err
    assert "secret" not in out + err


def test_a_trailing_slash_is_no_part_of_the_folder(tmp_path):
    require_smtp(POSTFIX)
    require_dovecot(DOVECOT)
    code, out, _ = run(write_plan(tmp_path, plan("imap://alice@127.0.0.1/INBOX/", 0.5,
                                                 "      cafile: /etc/smtprun-test/ca.pem\n")), "--no-report")
    assert code == 1
    assert "arrived in imap://alice@127.0.0.1:143/INBOX within 0.5s" in out  # looked in INBOX, found nothing


def test_plain_imap_on_the_implicit_tls_port_says_so(tmp_path):
    require_dovecot(DOVECOT)
    t0 = time.monotonic()
    code, out, _ = run(write_plan(tmp_path, plan(f"imap://alice@127.0.0.1:{DOVECOT.imaps_port}/INBOX", 1)),
                       "--no-report")
    assert code == 1
    assert time.monotonic() - t0 < 3
    assert (f"IMAP server 127.0.0.1:{DOVECOT.imaps_port} did not let smtprun log in and search within 1s "
            f"(silent, or too slow; port {DOVECOT.imaps_port} is usually implicit TLS: imaps://)") in out


def test_a_certificate_that_does_not_verify_says_how_to_trust_it(tmp_path):
    require_dovecot(DOVECOT)
    t0 = time.monotonic()
    code, out, _ = run(write_plan(tmp_path, plan("imaps://alice@127.0.0.1/INBOX", 10)), "--no-report")
    assert code == 1
    assert time.monotonic() - t0 < 3  # not tried again: the certificate will not change by itself
    assert ("IMAP server 127.0.0.1:993: certificate verification failed: unable to get local issuer certificate "
            "(give the server's CA with cafile:, or verify: false)") in out
