"""The `message:` step (runner/run/message.py) against the real mail loop around Postfix (scripts/env/mailbox.sh):
a built message with two attachments and a subject that is not ASCII, delivered and read back over IMAP
(Dovecot), its attachments checked by name and SHA-256 by `expect_delivery`; a DKIM-signed one verified by the
test OpenDKIM (dkim=pass in its Authentication-Results)."""

from __future__ import annotations

import email
import email.header
import email.policy
import hashlib
from pathlib import Path

import pytest

from tests.support.cli import run, write_plan
from tests.support.mailplans import mail_step, run_json
from tests.support.mtas import CA_PATH, CERT_DIR, DKIM, DOVECOT, POSTFIX, missing, require_dovecot, require_smtp

pytestmark = pytest.mark.postfix

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"  # every byte value, 16 KiB
CSV = "name,größe\nalice,1\n.a line starting with a dot\n".encode()
SUBJECT = "Grüße — the monthly report ✓"
AUTHSERV_ID = "mail.smtprun.test"  # scripts/env/opendkim.conf: AuthservID
KEY = CERT_DIR / "dkim" / f"{DKIM.selector}.private"


@pytest.fixture(scope="module")
def loop() -> None:
    require_smtp(POSTFIX)
    require_dovecot(DOVECOT)


def plan(message: str, check: str, *, sender: str = "bob@smtprun.test", mail_params: str = "",
         source: str = "") -> str:
    return f"""\
target: {{host: 127.0.0.1, port: 25, timeout: 10{f', source: {source}' if source else ''}}}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - send: "MAIL FROM:<{sender}>{mail_params}"
    expect: 250
  - send: "RCPT TO:<alice@smtprun.test>"
    expect: 250
  - send: DATA
    expect: 354
  - message:
{message}    expect: 250
  - send: QUIT
    expect: 221
{check}"""


MESSAGE = f"""\
      from: Bob Büttner <bob@smtprun.test>
      to: [alice@smtprun.test]
      subject: "{SUBJECT}"
      headers: {{X-Case: "{{{{ message_id }}}}"}}
      text: "Hello Alice,\\n.the report is attached.\\n"
      html: "<p>Hello Alice, the report is <b>attached</b>.</p>"
      attachments:
        - {{path: files/report.pdf}}
        - {{path: files/data.bin, name: données.csv, type: text/csv}}
"""


def attachments_check(pdf_sha: str) -> str:
    return f"""\
  - expect_delivery:
      mailbox: imap://alice@127.0.0.1/INBOX
      password: alice-password
      cafile: {CA_PATH}
      within: 15
      attachments:
        - {{name: report.pdf, sha256: {pdf_sha}, type: application/pdf}}
        - {{name: données.csv, sha256: {hashlib.sha256(CSV).hexdigest()}}}
      delete: true
"""


def files(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "report.pdf").write_bytes(PDF)
    (tmp_path / "files" / "data.bin").write_bytes(CSV)


@pytest.mark.parametrize("mail_params", ["", " SMTPUTF8"])
def test_a_built_message_arrives_with_its_subject_and_attachments(loop, tmp_path: Path, mail_params: str) -> None:
    files(tmp_path)
    text = plan(MESSAGE, attachments_check(hashlib.sha256(PDF).hexdigest()), mail_params=mail_params)
    code, out, report = run_json(tmp_path, text, "-v")
    assert code == 0, out
    step = mail_step(report)
    found = step["details"]["attachments"]
    assert [(a["name"], a["type"], a["size"]) for a in found] == [
        ("report.pdf", "application/pdf", len(PDF)), ("données.csv", "text/csv", len(CSV))]
    subject = next(value for name, value in step["details"]["headers"] if name == "Subject")
    if mail_params:  # an SMTPUTF8 transaction: the field as UTF-8 (RFC 6532), as Postfix delivered it
        assert subject == SUBJECT
    else:  # RFC 2047 encoded words, which any reader decodes to the same text
        assert subject.startswith("=?utf-8?")
        assert str(email.header.make_header(email.header.decode_header(subject))) == SUBJECT
    # -v and the transcript show the header section and the parts, never the base64 of the files
    assert f'message part:   application/pdf "report.pdf": {len(PDF)} bytes, sent as base64' in out
    sent = "".join(e["data"] for e in report["plans"][0]["cases"][0]["transcript"] if e["dir"] == "C")
    assert "Content-Type: multipart/mixed" in sent and "JVBERi0xLjQK" not in sent  # "%PDF-1.4\n" in base64
    assert "JVBERi0xLjQK" not in out


def test_an_attachment_missing_or_different_fails_naming_it(loop, tmp_path: Path) -> None:
    files(tmp_path)
    check = attachments_check('"' + "0" * 64 + '"').replace("name: données.csv,", "name: data.csv,")
    code, _out, report = run_json(tmp_path, plan(MESSAGE, check))
    assert code == 1
    reason = mail_step(report)["reason"]
    assert reason == (f"attachment 'report.pdf': its SHA-256 is {hashlib.sha256(PDF).hexdigest()}, expected "
                      f"{'0' * 64} ({len(PDF)} bytes arrived); attachment 'data.csv' is missing: the delivered copy "
                      f"has report.pdf (application/pdf, {len(PDF)} bytes), données.csv (text/csv, {len(CSV)} bytes)")


def test_a_signed_message_gets_dkim_pass_from_opendkim(loop, tmp_path: Path) -> None:
    if not KEY.exists():
        missing(f"{KEY} missing: run scripts/test-env.sh as root")
    message = f"""\
      from: dkim@{DKIM.domain}
      to: alice@smtprun.test
      subject: signed by smtprun
      text: "Signed as it was built.\\n"
      attachments: [{{path: files/report.pdf}}]
      dkim: {{domain: {DKIM.domain}, selector: {DKIM.selector}, key: {KEY}}}
"""
    check = f"""\
  - expect_delivery:
      mailbox: maildir:/home/alice/Maildir
      within: 15
      authentication_results: {{authserv_id: {AUTHSERV_ID}, dkim: pass}}
      attachments: [{{name: report.pdf, sha256: {hashlib.sha256(PDF).hexdigest()}}}]
      delete: true
"""
    files(tmp_path)
    # from 127.0.0.2, outside OpenDKIM's InternalHosts: it verifies the signature instead of signing
    code, out, report = run_json(tmp_path, plan(message, check, sender=f"dkim@{DKIM.domain}", source="127.0.0.2"))
    assert code == 0, out
    step = mail_step(report)
    written = [v for name, v in step["details"]["headers"] if name.lower() == "authentication-results"]
    assert written and written[0].startswith(f"{AUTHSERV_ID}; dkim=pass (2048-bit key) header.d={DKIM.domain} ")
    label = next(s["sent"] for s in report["plans"][0]["cases"][0]["steps"] if s["action"] == "message")
    assert label.endswith(f"1 attachment, DKIM-signed d={DKIM.domain} s={DKIM.selector})")


def test_a_missing_attachment_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    text = plan("      attachments: [{path: files/nowhere.pdf}]\n", "")
    code, out, err = run("validate", write_plan(tmp_path, text))
    assert code == 2
    assert f"plan.yaml:13:28: error: attachment not found: {tmp_path}/files/nowhere.pdf" in out + err
    assert "nothing was sent" in out + err
