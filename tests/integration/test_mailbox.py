"""The closed loop against the real mail loop around Postfix (scripts/env/mailbox.sh): the message a
case sent is found by its Message-ID over IMAP, IMAPS, POP3, POP3S and in the Maildir; receipts
(RFC 3464) come back delivered and failed; DKIM on the delivered copy; smtprun as the next hop."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import ROOT, run, write_plan
from tests.support.mailplans import mail_step, run_json, send_plan
from tests.support.mtas import (
    BOUNCE_DOMAIN,
    CA_PATH,
    CERT_DIR,
    DISCARD_DOMAIN,
    DKIM,
    DOVECOT,
    POSTFIX,
    relay_port_held,
    require_dovecot,
    require_smtp,
)

pytestmark = pytest.mark.postfix


@pytest.fixture(scope="module")
def loop() -> None:
    require_smtp(POSTFIX)
    require_dovecot(DOVECOT)


@pytest.mark.parametrize("mailbox", ["imap://alice@127.0.0.1/INBOX", "imaps://alice@127.0.0.1/INBOX",
                                     "pop3://alice@127.0.0.1", "pop3s://alice@127.0.0.1",
                                     "maildir:/home/alice/Maildir"])
def test_the_message_is_found_by_its_message_id(loop, tmp_path, mailbox):
    check = f"""\
  - expect_delivery:
      mailbox: {mailbox}
      password: alice-password
      cafile: {CA_PATH}
      within: 15
      headers: {{Subject: "^closed loop test$", Delivered-To: alice@smtprun.test}}
      body: Hello from the closed-loop
      latency: 10
      delete: true
"""
    code, out, report = run_json(tmp_path, send_plan(check))
    assert code == 0, out
    details = mail_step(report)["details"]
    assert details["found"] and details["deleted"]
    assert details["mailbox"].startswith(mailbox.split("/INBOX")[0].split("@")[0])
    assert ["Subject", "closed loop test"] in details["headers"]
    assert 0 <= details["latency"] < 10
    case = report["plans"][0]["cases"][0]
    message_id = next(h[1] for h in details["headers"] if h[0].lower() == "message-id").strip("<>")
    assert message_id.startswith("smtprun.") and message_id.endswith("@client.smtprun.test")
    assert "alice-password" not in json.dumps(report)
    if mailbox.startswith(("imap", "pop3")):  # the conversation is in the transcript, the password masked
        assert any("********" in e["data"] for e in case["transcript"] if e["dir"] == "*")


def test_a_message_that_never_arrives_fails_naming_the_wait(loop, tmp_path):
    check = """\
  - expect_delivery:
      mailbox: imap://alice@127.0.0.1/INBOX
      password: alice-password
      cafile: /etc/smtprun-test/ca.pem
      within: 2
"""
    t0 = time.monotonic()
    code, _out, report = run_json(tmp_path, send_plan(check, rcpt=f"someone@{DISCARD_DOMAIN}"))
    assert code == 1
    assert time.monotonic() - t0 < 6
    reason = mail_step(report)["reason"]
    assert reason.startswith("no message with Message-ID <smtprun.")
    assert reason.endswith("arrived in imap://alice@127.0.0.1:143/INBOX within 2s (looked "
                           f"{mail_step(report)['details']['looks']} times)")


def test_message_id_is_added_when_the_body_has_none(loop, tmp_path):
    plan = send_plan("""\
  - expect_delivery:
      mailbox: maildir:/home/alice/Maildir
      within: 15
      delete: true
""").replace("      Message-ID: <{{ message_id }}>\n", "")
    code, out, report = run_json(tmp_path, plan)
    assert code == 0, out
    case = report["plans"][0]["cases"][0]
    data = next(s for s in case["steps"] if s["action"] == "data")
    assert data["sent"].endswith("Message-ID added)")
    assert any(e["data"].startswith("added Message-ID: <smtprun.") for e in case["transcript"])


def test_delivered_receipt_for_notify_success(loop, tmp_path):
    check = """\
  - expect_dsn:
      mailbox: imaps://bob@127.0.0.1/INBOX
      password: bob-password
      cafile: /etc/smtprun-test/ca.pem
      within: 15
      action: delivered
      status: 2.0.0
      recipient: ^alice@smtprun\\.test$
      diagnostic: delivered to maildir
      delete: true
"""
    code, out, report = run_json(tmp_path, send_plan(check, mail_params=" RET=HDRS ENVID={{ message_id }}",
                                                     rcpt_params=" NOTIFY=SUCCESS"))
    assert code == 0, out
    dsn = mail_step(report, "expect_dsn")["details"]["dsn"]
    assert dsn["original_envelope_id"].startswith("smtprun.")
    assert dsn["recipients"][0]["action"] == "delivered"
    assert dsn["subject"] == "Successful Mail Delivery Report"


def test_failed_receipt_for_the_bouncing_domain(loop, tmp_path):
    check = """\
  - expect_dsn:
      mailbox: maildir:/home/bob/Maildir
      within: 20
      action: failed
      status: 5.x.x
      delete: true
"""
    code, out, report = run_json(tmp_path, send_plan(check, rcpt=f"nobody@{BOUNCE_DOMAIN}",
                                                     rcpt_params=" NOTIFY=FAILURE"))
    assert code == 0, out
    rcpt = mail_step(report, "expect_dsn")["details"]["dsn"]["recipients"][0]
    assert rcpt["final_recipient"] == f"nobody@{BOUNCE_DOMAIN}"
    assert rcpt["status"].startswith("5.")


def test_a_receipt_that_says_otherwise_fails_with_its_fields(loop, tmp_path):
    check = """\
  - expect_dsn:
      mailbox: maildir:/home/bob/Maildir
      within: 20
      action: delivered
      delete: true
"""
    code, _out, report = run_json(tmp_path, send_plan(check, rcpt=f"nobody@{BOUNCE_DOMAIN}",
                                                     rcpt_params=" NOTIFY=FAILURE"))
    assert code == 1
    assert mail_step(report, "expect_dsn")["reason"] == f"nobody@{BOUNCE_DOMAIN}: Action is failed, expected delivered"


def test_roundtrip_plan_passes(loop):
    code, out, err = run(str(ROOT / "plans/roundtrip.yaml"), "--var", f"cafile={CA_PATH}", "--no-report")
    assert code == 0, out + err
    assert "3 passed" in out


def test_wrong_imap_password_fails_and_is_nowhere(loop, tmp_path):
    secret = "not-alices-password-4711"
    check = f"""\
  - expect_delivery:
      mailbox: imaps://alice@127.0.0.1/INBOX
      password: "{{{{ env.MAILBOX_TEST_PASSWORD }}}}"
      cafile: {CA_PATH}
      within: 30
      delete: true
"""  # (Dovecot answers a failed login late, later after each failure from the same address)
    plan = write_plan(tmp_path, send_plan(check))
    import os

    os.environ["MAILBOX_TEST_PASSWORD"] = secret
    try:
        code, out, err = run(plan, "-v", "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml"),
                             "--report-dir", str(tmp_path / "html"))
    finally:
        del os.environ["MAILBOX_TEST_PASSWORD"]
    assert code == 1
    assert "IMAP login as alice at 127.0.0.1:993 refused: [AUTHENTICATIONFAILED] Authentication failed." in out
    written = [p for p in tmp_path.rglob("*") if p.suffix in (".json", ".xml", ".html")]
    assert {p.suffix for p in written} == {".json", ".xml", ".html"}
    for text in (out, err, *(p.read_text() for p in written)):
        assert secret not in text


@pytest.fixture
def relay_port() -> Iterator[int]:
    with relay_port_held() as port:
        yield port


def test_outbound_relay_to_the_listener(loop, tmp_path, relay_port):
    code, out, err = run(str(ROOT / "plans/outbound.yaml"), "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    smtp = mail_step(json.loads((tmp_path / "r.json").read_text()))["details"]["smtp"]
    assert smtp["ehlo"] == "mail.smtprun.test"  # Postfix's myhostname
    assert smtp["tls"] is False and smtp["rcpt_to"] == ["someone@relay.smtprun.test"]


def test_outbound_without_tls_fails_when_tls_is_required(loop, tmp_path, relay_port):
    code, out, _ = run(str(ROOT / "plans/outbound.yaml"), "--var", "require_tls=true", "--no-report")
    assert code == 1
    assert "the MTA did not use STARTTLS (the listener offered none: give it certfile:)" in out


def test_outbound_over_tls_when_the_listener_offers_it(loop, tmp_path, relay_port):
    code, out, err = run(str(ROOT / "plans/outbound.yaml"), "--var", f"listen_cert={CERT_DIR / 'server.pem'}",
                         "--var", f"listen_key={CERT_DIR / 'server.key'}", "--var", "require_tls=true",
                         "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    steps = [s for s in json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"][0]["steps"]
             if s["action"] == "expect_delivery"]
    assert len(steps) == 2 and all(s["status"] == "passed" for s in steps)
    smtp = steps[-1]["details"]["smtp"]
    assert smtp["tls"] is True and smtp["ehlo"] == "mail.smtprun.test"
    assert str(smtp.get("tls_version", "")).startswith("TLSv1."), smtp


def test_twenty_concurrent_cases_each_find_their_own_message(loop, tmp_path):
    check = """\
  - expect_delivery:
      mailbox: imap://alice@127.0.0.1/INBOX
      password: alice-password
      cafile: /etc/smtprun-test/ca.pem
      within: 30
      headers: {Subject: "case {{ n }}$"}
      delete: true
"""
    plan = send_plan(check).replace("Subject: closed loop test", "Subject: closed loop test, case {{ n }}")
    plan = plan.replace("vars:\n", "matrix:\n  n: [" + ", ".join(str(i) for i in range(20)) + "]\nvars:\n")
    code, out, report = run_json(tmp_path, plan, "--jobs", "20")
    assert code == 0, out
    cases = report["plans"][0]["cases"]
    assert len(cases) == 20
    ids = {c["steps"][-1]["details"]["headers"] and next(
        h[1] for h in c["steps"][-1]["details"]["headers"] if h[0].lower() == "message-id") for c in cases}
    assert len(ids) == 20


def test_dkim_pass_for_the_signed_domain_and_none_for_others(loop, tmp_path, dnsmasq_factory):
    dns = dnsmasq_factory(DKIM.dnsmasq_option())
    check = """\
  - expect_delivery:
      mailbox: maildir:/home/alice/Maildir
      within: 15
      dkim: {verdict}
      delete: true
"""
    extra = f", nameserver: \"{dns.host}:{dns.port}\""
    code, out, report = run_json(tmp_path, send_plan(check.format(verdict="pass"), sender=f"dkim@{DKIM.domain}",
                                                     extra=extra))
    assert code == 0, out
    dkim = mail_step(report)["details"]["dkim"]
    assert dkim["result"] == "pass" and dkim["signatures"][0]["d"] == DKIM.domain
    code, out, report = run_json(tmp_path, send_plan(check.format(verdict="none"), extra=extra))
    assert code == 0, out
    code, out, report = run_json(tmp_path, send_plan(check.format(verdict="none"), sender=f"dkim@{DKIM.domain}",
                                                     extra=extra))
    assert code == 1
    assert mail_step(report)["reason"].startswith("DKIM is pass, expected none")


def test_dkim_fails_against_another_key(loop, tmp_path, dnsmasq_factory):
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    data = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    dns = dnsmasq_factory(f"--txt-record={DKIM.record_name}," + ",".join(data[i:i + 255]
                                                                         for i in range(0, len(data), 255)))
    check = """\
  - expect_delivery:
      mailbox: maildir:/home/alice/Maildir
      within: 15
      dkim: pass
      delete: true
"""
    code, _out, report = run_json(tmp_path, send_plan(check, sender=f"dkim@{DKIM.domain}",
                                                     extra=f", nameserver: \"{dns.host}:{dns.port}\""))
    assert code == 1
    assert mail_step(report)["reason"].startswith(f"DKIM is fail, expected pass (d={DKIM.domain} s={DKIM.selector}: ")


def test_dkim_without_its_key_in_dns_says_so(loop, tmp_path, dnsmasq_factory):
    dns = dnsmasq_factory()  # no TXT record: NXDOMAIN for the key
    check = """\
  - expect_delivery:
      mailbox: maildir:/home/alice/Maildir
      within: 15
      dkim: pass
      delete: true
"""
    code, _out, report = run_json(tmp_path, send_plan(check, sender=f"dkim@{DKIM.domain}",
                                                     extra=f", nameserver: \"{dns.host}:{dns.port}\""))
    assert code == 1
    assert mail_step(report)["reason"] == (f"DKIM is fail, expected pass (d={DKIM.domain} s={DKIM.selector}: "
                                           f"no key: NXDOMAIN for {DKIM.record_name} TXT)")


def test_dkim_keys_are_asked_of_each_name_server_at_its_own_port(loop, tmp_path, dnsmasq_factory):
    from runner.tools.server import free_port

    dns = dnsmasq_factory(DKIM.dnsmasq_option())
    dead = free_port("127.0.0.1")  # nothing answers there: the second name server, on its port, must be asked
    check = """\
  - expect_delivery:
      mailbox: maildir:/home/alice/Maildir
      within: 15
      dkim: pass
      delete: true
"""
    servers = f'["127.0.0.1:{dead}", "{dns.host}:{dns.port}"]'
    code, out, report = run_json(tmp_path, send_plan(check, sender=f"dkim@{DKIM.domain}",
                                                    extra=f", nameserver: {servers}"))
    assert code == 0, out
    assert mail_step(report)["details"]["dkim"]["result"] == "pass"


def test_listener_sees_starttls_and_its_version(tmp_path):
    from runner.tools.server import free_port

    port = free_port("127.0.0.1")
    plan = f"""\
target: {{host: 127.0.0.1, port: {port}, timeout: 10}}
steps:
  - expect: 220
  - send: EHLO mta.smtprun.test
    expect: {{code: 250, keywords: [STARTTLS]}}
  - starttls: {{verify: false}}
  - send: EHLO mta.smtprun.test
    expect: 250
  - send: "MAIL FROM:<a@smtprun.test>"
    expect: 250
  - send: "RCPT TO:<b@smtprun.test>"
    expect: 250
  - send: DATA
    expect: 354
  - data: "Subject: over TLS\\n\\nHello.\\n"
    expect: 250
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: listen://127.0.0.1:{port}
      certfile: /etc/smtprun-test/server.pem
      keyfile: /etc/smtprun-test/server.key
      within: 5
      ehlo: ^mta\\.smtprun\\.test$
      tls: true
"""
    if not Path("/etc/smtprun-test/server.key").exists():
        pytest.skip("the test certificate is missing: run scripts/test-env.sh as root")
    code, out, report = run_json(tmp_path, plan)
    assert code == 0, out
    smtp = mail_step(report)["details"]["smtp"]
    assert smtp["tls"] is True and smtp["tls_version"] in ("TLSv1.2", "TLSv1.3")


def test_listener_port_taken_fails_the_case_clearly(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        plan = write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, port: {port}, timeout: 2}}
steps:
  - expect: 220
  - expect_delivery: {{mailbox: "listen://127.0.0.1:{port}", within: 1}}
""")
        code, out, _ = run(plan, "--no-report")
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out





def test_reports_show_what_arrived_escaped(loop, tmp_path):
    check = """\
  - expect_delivery:
      mailbox: maildir:/home/alice/Maildir
      within: 15
      delete: true
"""
    plan = write_plan(tmp_path, send_plan(check, headers="      X-Test: <b>bold</b> & more\n"))
    code, out, err = run(plan, "--junit", str(tmp_path / "r.xml"), "--report-dir", str(tmp_path / "html"))
    assert code == 0, out + err
    html = next((tmp_path / "html").glob("plan-*.html")).read_text()
    assert "Step 8: what expect_delivery found" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt; &amp; more" in html
    assert "maildir:/home/alice/Maildir" in html
    junit = (tmp_path / "r.xml").read_text()
    assert "step 8 (expect_delivery) found:" in junit and "  header X-Test: &lt;b&gt;bold&lt;/b&gt; &amp; more" in junit


@pytest.mark.parametrize("mailbox", ["imaps://alice@127.0.0.1/INBOX", "pop3s://alice@127.0.0.1",
                                     "maildir:/home/alice/Maildir"])
def test_a_large_message_is_not_read_whole(loop, tmp_path, mailbox):
    plan = send_plan(f"""\
  - expect_delivery:
      mailbox: {mailbox}
      password: alice-password
      cafile: {CA_PATH}
      within: 20
      body: quick brown fox
      delete: true
""")
    start, end = plan.index("  - data: |"), plan.index("    expect: 250\n  - send: QUIT")
    plan = plan[:start] + "  - data_size: 3MB\n" + plan[end:]
    code, out, report = run_json(tmp_path, plan)
    assert code == 0, out
    details = mail_step(report)["details"]
    assert details["truncated"] is True
    assert details["size"] > 2_900_000  # (a Maildir file has LF line ends: a little smaller than what was sent)
