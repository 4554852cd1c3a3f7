"""xclient: and xforward: against Postfix: the listener that trusts loopback (127.0.0.1:2543,
scripts/env/postfix-listeners.sh) takes the forged client into the delivered copy's `Received:` line; the
listener on :25 refuses with 550, and a plan can say so."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.cli import run, write_plan
from tests.support.mtas import POSTFIX, POSTFIX_XCLIENT_PORT, SmtpServer, find_delivered, require_smtp

pytestmark = pytest.mark.postfix


@pytest.fixture
def trusting() -> SmtpServer:
    from dataclasses import replace

    return require_smtp(replace(POSTFIX, port=POSTFIX_XCLIENT_PORT))


def _run(tmp_path, plan: str) -> tuple[int, str, list[dict]]:
    code, out, err = run(write_plan(tmp_path, plan), "--json", str(tmp_path / "r.json"), "--no-report")
    report = json.loads((tmp_path / "r.json").read_text())
    return code, out + err, report["plans"][0]["cases"][0]["transcript"]


def test_the_forged_client_is_in_the_delivered_copy(trusting, tmp_path):
    message_id = f"{uuid.uuid4().hex}@xclient.smtprun.test"
    code, out, _ = _run(tmp_path, f"""\
target: {{host: 127.0.0.1, port: {trusting.port}, timeout: 10}}
steps:
  - expect: 220
  - send: EHLO proxy.smtprun.test
    expect: 250
  - xclient: {{NAME: forged.example.org, ADDR: 198.51.100.7, HELO: forged.example.org}}
    expect: 220
  - send: EHLO forged.example.org
    expect: 250
  - send: "MAIL FROM:<xclient@smtprun.test>"
    expect: 250
  - send: "RCPT TO:<alice@smtprun.test>"
    expect: 250
  - send: DATA
    expect: 354
  - data: "Message-ID: <{message_id}>\\nSubject: through a proxy\\n\\nHello.\\n"
    expect: 250
  - send: QUIT
    expect: 221
""")
    assert code == 0, out
    delivered = find_delivered(POSTFIX, "alice", message_id)
    assert delivered is not None, "no message arrived in alice's Maildir"
    assert b"Received: from forged.example.org (forged.example.org [198.51.100.7])" in delivered


def test_a_server_that_does_not_trust_us_refuses_and_the_plan_says_so(postfix, tmp_path):
    code, out, transcript = _run(tmp_path, f"""\
target: {{host: {postfix.host}, port: {postfix.port}, timeout: 10}}
steps:
  - expect: 220
  - send: EHLO proxy.smtprun.test
    expect: 250
  - xclient: {{NAME: forged.example.org, ADDR: 198.51.100.7}}
    expect: 550
  - xforward: {{NAME: forged.example.org, ADDR: 198.51.100.7}}
    expect: 550
  - send: QUIT
    expect: 221
""")
    assert code == 0, out
    notes = [e["data"] for e in transcript if e["dir"] == "*"]
    assert "XCLIENT was not offered in the EHLO reply; sent anyway" in notes
    assert "XFORWARD was not offered in the EHLO reply; sent anyway" in notes
    sent = [e["data"] for e in transcript if e["dir"] == "C"]
    assert any(line.startswith("XCLIENT NAME=forged.example.org ADDR=198.51.100.7") for line in sent)


def test_xforward_is_taken_by_a_server_that_trusts_us(trusting, tmp_path):
    code, out, transcript = _run(tmp_path, f"""\
target: {{host: 127.0.0.1, port: {trusting.port}, timeout: 10}}
steps:
  - expect: 220
  - send: EHLO filter.smtprun.test
    expect: 250
  - xforward: {{NAME: forged.example.org, ADDR: 198.51.100.7, PROTO: ESMTP}}
    expect: 250
  - send: QUIT
    expect: 221
""")
    assert code == 0, out
    assert not any("not offered" in e["data"] for e in transcript if e["dir"] == "*")
