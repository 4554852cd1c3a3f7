"""`folder:` against the real Dovecot and Maildir: a message filed in Junk fails saying where it went, soon
rather than after all of `within:`; a folder that does not exist fails at once naming those there are;
a mailbox step in `finally:` runs after QUIT; booleans given through templates and --var."""

from __future__ import annotations

import json
import mailbox
import os
import shutil
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.support.cli import ROOT, run, write_plan
from tests.support.mtas import CA_PATH, DOVECOT, POSTFIX, relay_port_held, require_dovecot, require_smtp

pytestmark = pytest.mark.postfix

MAILDIR = DOVECOT.maildir("alice")


@pytest.fixture(scope="module")
def loop() -> None:
    require_smtp(POSTFIX)
    require_dovecot(DOVECOT)


@pytest.fixture
def message_id() -> str:
    return f"smtprun.folders.{os.getpid()}.{time.time_ns()}@client.smtprun.test"


def imap() -> IMAPClient:
    client = IMAPClient(DOVECOT.host, DOVECOT.imap_port, ssl=False, timeout=10)
    client.login("alice", DOVECOT.users["alice"])
    return client


@pytest.fixture
def junk_over_imap(message_id: str) -> Iterator[str]:
    """The case's message filed into alice's Junk over IMAP (APPEND, as a filter or a user would),
    removed from every folder afterwards if the step did not remove it."""
    with imap() as client:
        if not client.folder_exists("Junk"):
            client.create_folder("Junk")
        client.append("Junk", message(message_id))
    yield message_id
    with imap() as client:
        for folder in ("INBOX", "Junk"):
            client.select_folder(folder)
            uids = client.search(["HEADER", "Message-ID", f"<{message_id}>"])
            if uids:
                client.delete_messages(uids)
                client.expunge()


def message(message_id: str) -> bytes:
    msg = EmailMessage()
    msg["Message-ID"] = f"<{message_id}>"
    msg["From"] = "bob@smtprun.test"
    msg["To"] = "alice@smtprun.test"
    msg["Subject"] = "filed as junk"
    msg["X-Spam-Flag"] = "YES"
    msg.set_content("A message a filter put in Junk.")
    return msg.as_bytes()


@pytest.fixture
def junk_in_maildir(message_id: str) -> Iterator[str]:
    """The case's message written into alice's Maildir++ folder .Junk (owned by alice, as Dovecot needs)."""
    root = mailbox.Maildir(str(MAILDIR), create=False)
    made = "Junk" not in root.list_folders()
    junk = root.add_folder("Junk") if made else root.get_folder("Junk")
    key = junk.add(message(message_id))
    uid, gid = MAILDIR.stat().st_uid, MAILDIR.stat().st_gid
    for path in (MAILDIR / ".Junk", *(MAILDIR / ".Junk").rglob("*")):
        os.chown(path, uid, gid)
    yield message_id
    junk.discard(key)
    if made and not junk.keys():
        shutil.rmtree(MAILDIR / ".Junk", ignore_errors=True)


def plan_for(message_id: str, check: str) -> str:
    """A case that only looks for a message already filed (its Message-ID fixed by the plan)."""
    return f"""\
target: {{host: 127.0.0.1, port: 25, timeout: 10}}
vars: {{message_id: "{message_id}"}}
steps:
  - expect: 220
  - send: QUIT
    expect: 221
{check}"""


def run_json(tmp_path: Path, plan_text: str, *args: str) -> tuple[int, str, dict]:
    plan = write_plan(tmp_path, plan_text)
    code, out, err = run(plan, "--json", str(tmp_path / "r.json"), *args)
    return code, out + err, json.loads((tmp_path / "r.json").read_text())


def mail_step(report: dict) -> dict:
    return next(s for s in report["plans"][0]["cases"][0]["steps"] if s["action"].startswith("expect_d"))


@pytest.mark.parametrize("mailbox_url", ["imap://alice@127.0.0.1/INBOX", "imaps://alice@127.0.0.1/INBOX"])
def test_a_message_in_junk_fails_saying_where_it_went(loop, tmp_path, junk_over_imap, mailbox_url):
    check = f"""\
  - expect_delivery:
      mailbox: {mailbox_url}
      password: alice-password
      cafile: {CA_PATH}
      folder: INBOX
      within: 20
      delete: true
"""
    t0 = time.monotonic()
    code, out, report = run_json(tmp_path, plan_for(junk_over_imap, check), "--report-dir", str(tmp_path / "html"))
    took = time.monotonic() - t0
    assert code == 1, out
    assert took < 5, f"{took:.1f}s: a misfiled message should fail soon, not after all of within:"
    found = mail_step(report)
    assert found["reason"] == 'arrived in folder "Junk", not in "INBOX"'
    assert 'why:      arrived in folder "Junk", not in "INBOX"' in out
    details = found["details"]
    assert details["folder"] == "Junk" and details["expected_folder"] == "INBOX"
    assert details["found"] is True and details["deleted"] is True
    assert ["X-Spam-Flag", "YES"] in details["headers"]  # why it went there, in the report
    html = next((tmp_path / "html").glob("plan-*.html")).read_text()
    assert "Junk (expected INBOX)" in html and "X-Spam-Flag" in html
    with imap() as client:  # delete: true removed it from Junk
        client.select_folder("Junk")
        assert client.search(["HEADER", "Message-ID", f"<{junk_over_imap}>"]) == []


def test_a_delivered_message_moved_to_junk_fails_saying_where_it_went(loop, tmp_path, message_id):
    send = plan_for(message_id, "").replace("  - send: QUIT\n", """\
  - send: EHLO client.smtprun.test
    expect: 250
  - send: "MAIL FROM:<bob@smtprun.test>"
    expect: 250
  - send: "RCPT TO:<alice@smtprun.test>"
    expect: 250
  - send: DATA
    expect: 354
  - data: "Message-ID: <{{ message_id }}>\\nSubject: to be moved\\n\\nHello.\\n"
    expect: 250
  - send: QUIT
""")
    code, out, _ = run(write_plan(tmp_path, send, "send.yaml"), "--no-report")
    assert code == 0, out
    with imap() as client:  # as a user (or a filter) would: MOVE it from INBOX to Junk (RFC 6851)
        if not client.folder_exists("Junk"):
            client.create_folder("Junk")
        client.select_folder("INBOX")
        for _ in range(50):
            uids = client.search(["HEADER", "Message-ID", f"<{message_id}>"])
            if uids:
                break
            time.sleep(0.2)
        assert uids, "Postfix did not deliver the message to alice's INBOX within 10s"
        client.move(uids, "Junk")
    check = f"""\
  - expect_delivery:
      mailbox: imap://alice@127.0.0.1/INBOX
      password: alice-password
      cafile: {CA_PATH}
      within: 20
      headers: {{Subject: "^to be moved$"}}
      delete: true
"""
    t0 = time.monotonic()
    code, out, report = run_json(tmp_path, plan_for(message_id, check), "--no-report")
    assert code == 1, out
    assert time.monotonic() - t0 < 5
    found = mail_step(report)
    assert found["reason"] == 'arrived in folder "Junk", not in "INBOX"'
    assert found["details"]["folder"] == "Junk" and found["details"]["deleted"] is True
    assert any(name == "Received" and "by mail.smtprun.test (Postfix)" in value
               for name, value in found["details"]["headers"])


def test_a_message_in_the_maildirs_junk_fails_saying_where_it_went(loop, tmp_path, junk_in_maildir):
    check = f"""\
  - expect_delivery:
      mailbox: maildir:{MAILDIR}
      within: 20
"""
    t0 = time.monotonic()
    code, out, report = run_json(tmp_path, plan_for(junk_in_maildir, check), "--no-report")
    assert code == 1, out
    assert time.monotonic() - t0 < 5
    found = mail_step(report)
    assert found["reason"] == 'arrived in folder "Junk", not in "INBOX"'
    assert found["details"]["folder"] == "Junk" and found["details"]["deleted"] is False


def test_folder_junk_passes_when_it_is_there(loop, tmp_path, junk_in_maildir):
    check = f"""\
  - expect_delivery:
      mailbox: maildir:{MAILDIR}
      folder: Junk
      within: 5
      headers: {{X-Spam-Flag: "^YES$"}}
"""
    code, out, report = run_json(tmp_path, plan_for(junk_in_maildir, check), "--no-report")
    assert code == 0, out
    assert mail_step(report)["details"]["folder"] == "Junk"


@pytest.mark.parametrize(("mailbox_url", "reason"), [
    ("imap://alice@127.0.0.1/INBOX", 'IMAP server 127.0.0.1:143: Mailbox doesn\'t exist: Inbx; its folders are '),
    (f"maildir:{MAILDIR}", f'no Maildir++ folder "Inbx" in {MAILDIR} (its folders: '),
])
def test_a_folder_that_does_not_exist_fails_at_once_naming_those_there_are(loop, tmp_path, message_id,
                                                                           mailbox_url, reason):
    check = f"""\
  - expect_delivery:
      mailbox: {mailbox_url}
      password: alice-password
      cafile: {CA_PATH}
      folder: Inbx
      within: 20
"""
    t0 = time.monotonic()
    code, out, report = run_json(tmp_path, plan_for(message_id, check), "--no-report")
    assert code == 1, out
    assert time.monotonic() - t0 < 3
    why = mail_step(report)["reason"]
    assert why.startswith(reason), why
    assert ('"INBOX"' in why) == mailbox_url.startswith("imap")


def test_a_folder_template_rendered_empty_means_the_urls_folder(loop, tmp_path, junk_in_maildir):
    check = f"""\
  - expect_delivery:
      mailbox: maildir:{MAILDIR}#Junk
      folder: "{{{{ folder }}}}"
      within: 5
"""
    text = plan_for(junk_in_maildir, check).replace("vars: {", "vars: {folder: x, ")
    code, out, report = run_json(tmp_path, text, "--no-report", "--var", "folder=")
    assert code == 0, out
    assert mail_step(report)["details"]["folder"] == "Junk"


def test_a_maildir_that_never_appears_is_named_with_the_maildirs_beside_it(loop, tmp_path, message_id):
    home = tmp_path / "home"
    for sub in ("cur", "new", "tmp"):
        (home / "Maildir" / sub).mkdir(parents=True)
    check = f"""\
  - expect_delivery:
      mailbox: maildir:{home}/Maildr
      within: 2
"""
    code, out, report = run_json(tmp_path, plan_for(message_id, check), "--no-report")
    assert code == 1, out
    why = mail_step(report)["reason"]
    assert why.startswith(f"no Maildir at {home}/Maildr yet (a directory with cur/, new/ and tmp/"), why
    assert f"Maildirs beside it: {home}/Maildir;" in why and "tried " in why


def test_a_maildir_whose_folder_is_missing_fails_at_once(loop, tmp_path, message_id):
    check = """\
  - expect_delivery:
      mailbox: maildir:/home/nobody-here/Maildir
      within: 20
"""
    code, out, report = run_json(tmp_path, plan_for(message_id, check), "--no-report")
    assert code == 1, out
    step = mail_step(report)
    assert step["reason"].startswith("no Maildir at /home/nobody-here/Maildir: its folder /home/nobody-here "
                                     "does not exist (waiting for message with Message-ID <"), step["reason"]
    assert step["duration"] < 5


def test_folder_is_refused_for_a_pop3_mailbox(tmp_path, message_id):
    check = """\
  - expect_delivery:
      mailbox: pop3://alice@127.0.0.1
      folder: Junk
"""
    code, _out, err = run(write_plan(tmp_path, plan_for(message_id, check)), "--no-report")
    assert code == 2
    assert "error: folder: a pop3: mailbox has no folders (IMAP and Maildir do)" in err


def test_a_mailbox_step_in_finally_runs_after_quit(loop, tmp_path):
    plan = f"""\
target: {{host: 127.0.0.1, port: 25, timeout: 10}}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - send: "MAIL FROM:<bob@smtprun.test>"
    expect: 250
  - send: "RCPT TO:<alice@smtprun.test>"
    expect: 250
  - send: DATA
    expect: 354
  - data: |
      Message-ID: <{{{{ message_id }}}}>
      Subject: checked in finally

      Hello.
    expect: 250
  - send: QUIT
    expect: 221
finally:
  - send: NOOP
    expect: 250
  - expect_delivery:
      mailbox: maildir:{MAILDIR}
      within: 15
      headers: {{Subject: "^checked in finally$"}}
      delete: true
"""
    code, out, report = run_json(tmp_path, plan, "--no-report")
    assert code == 0, out
    steps = report["plans"][0]["cases"][0]["steps"]
    noop, delivery = steps[-2], steps[-1]
    assert noop["status"] == "skipped"
    assert noop["reason"] == "not run: the server ended the session (221)"
    assert delivery["status"] == "passed" and delivery["details"]["deleted"] is True


def test_booleans_given_through_templates_and_var(loop, tmp_path):
    check = f"""\
  - send: EHLO client.smtprun.test
    expect: 250
  - send: "MAIL FROM:<bob@smtprun.test>"
    expect: 250
  - send: "RCPT TO:<alice@smtprun.test>"
    expect: 250
  - send: DATA
    expect: 354
  - data: "Message-ID: <{{{{ message_id }}}}>\\nSubject: booleans\\n\\nHello.\\n"
    expect: 250
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: maildir:{MAILDIR}
      within: 15
      received_tls: "{{{{ require_tls }}}}"
      delete: "{{{{ clean_up }}}}"
"""
    text = plan_for("x", check).replace('vars: {message_id: "x"}', "vars: {require_tls: true, clean_up: yes}")
    text = text.replace("  - send: QUIT\n    expect: 221\n  - send: EHLO", "  - send: EHLO", 1)
    code, out, report = run_json(tmp_path, text, "--no-report", "--var", "require_tls=False", "--var", "clean_up=1")
    assert code == 0, out  # "False" from --var is false, not a non-empty string taken for true
    assert mail_step(report)["details"]["deleted"] is True
    code, out, report = run_json(tmp_path, text, "--no-report", "--var", "require_tls=YES")
    assert code == 1  # smtprun gave Postfix the message without TLS, so its Received field says so
    assert mail_step(report)["reason"].startswith("the Received chain does not show TLS on every SMTP hop")
    code, out, report = run_json(tmp_path, text, "--no-report", "--var", "require_tls=sometimes")
    assert code == 1
    assert mail_step(report)["reason"] == ("received_tls: '{{ require_tls }}' renders to 'sometimes', not a boolean "
                                           "(true/false, yes/no or 1/0)")


def test_outbound_with_require_tls_false_from_the_command_line(loop, tmp_path):
    with relay_port_held():
        code, out, err = run(str(ROOT / "plans/outbound.yaml"), "--var", "require_tls=false", "--no-report")
    assert code == 0, out + err  # `when: require_tls` reads the string "false" as false
    assert "1 passed" in out
    with relay_port_held():
        code, out, err = run(str(ROOT / "plans/outbound.yaml"), "--var", "require_tls=perhaps", "--no-report")
    assert code == 1
    assert "why:      tls: '{{ require_tls }}' renders to 'perhaps', not a boolean (true/false, yes/no or 1/0)" in out
