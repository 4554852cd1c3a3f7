"""target.source / --source against real servers: Postfix writes the address the message came from in
its Received header, the embedded server greets the peer it sees, and an address this machine does not
have is refused by the system before anything is sent. Linux routes all of 127.0.0.0/8 to lo."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runner.tools.server import EmbeddedServer
from tests.support.cli import run, write_plan
from tests.support.mtas import DOVECOT, POSTFIX, require_dovecot, require_smtp

EHLO_PLAN = """\
target: {{host: 127.0.0.1, port: {port}, timeout: 10{extra}}}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: {{code: 250, text: "{greeted}"}}
  - send: QUIT
    expect: 221
"""


def run_json(tmp_path: Path, text: str, *args: str) -> tuple[int, str, dict]:
    plan = write_plan(tmp_path, text)
    code, out, err = run(plan, "--json", str(tmp_path / "r.json"), "--report-dir", str(tmp_path / "html"), *args)
    return code, out + err, json.loads((tmp_path / "r.json").read_text())


def notes(case: dict) -> list[str]:
    return [e["data"] for e in case["transcript"] if e["dir"] == "*"]


def test_the_embedded_server_sees_the_source_address(tmp_path: Path) -> None:
    with EmbeddedServer(profile="exchange") as server:
        text = EHLO_PLAN.format(port=server.port, extra="", greeted=r"Hello \\[127\\.0\\.0\\.2\\]")
        code, out, report = run_json(tmp_path, text, "--source", "127.0.0.2")
        assert code == 0, out
        case = report["plans"][0]["cases"][0]
        assert case["source"] == "127.0.0.2" and case["peer"] == f"127.0.0.1:{server.port}"
        assert f"connected from 127.0.0.2 to 127.0.0.1:{server.port}" in notes(case)
        html = next(p for p in (tmp_path / "html").rglob("*.html") if p.name != "index.html").read_text()
        assert "connected from <b>127.0.0.2</b>" in html

        # the default is the system's choice, and says nothing of a source
        text = EHLO_PLAN.format(port=server.port, extra="", greeted=r"Hello \\[127\\.0\\.0\\.1\\]")
        code, out, report = run_json(tmp_path, text)
        assert code == 0, out
        case = report["plans"][0]["cases"][0]
        assert case["source"] is None and f"connected to 127.0.0.1:{server.port}" in notes(case)


def test_a_source_this_machine_does_not_have_is_refused(tmp_path: Path) -> None:
    with EmbeddedServer() as server:
        text = EHLO_PLAN.format(port=server.port, extra=", source: 192.0.2.1", greeted=".")
        code, _out, report = run_json(tmp_path, text)
    assert code == 1
    assert report["plans"][0]["cases"][0]["reason"].endswith(
        "cannot use source address 192.0.2.1: Cannot assign requested address")
    assert not server.messages


def test_a_refused_connection_names_the_source_the_server_saw(tmp_path: Path) -> None:
    from runner.tools.server import free_port

    port = free_port("127.0.0.1")  # nothing listens there
    code, _out, report = run_json(tmp_path, EHLO_PLAN.format(port=port, extra=", source: 127.0.0.2", greeted="."))
    assert code == 1
    assert report["plans"][0]["cases"][0]["reason"].endswith(
        f"cannot connect to 127.0.0.1:{port} from source address 127.0.0.2: Connection refused")


def test_an_ipv6_source_for_an_ipv4_target_is_named(tmp_path: Path) -> None:
    with EmbeddedServer() as server:
        text = EHLO_PLAN.format(port=server.port, extra=", source: '::1'", greeted=".")
        code, _out, report = run_json(tmp_path, text)
    assert code == 1
    assert report["plans"][0]["cases"][0]["reason"].endswith(
        f"cannot connect to 127.0.0.1:{server.port} from source address ::1: "
        "an IPv6 source cannot reach an IPv4 address")


@pytest.mark.postfix
def test_postfix_receives_the_message_from_the_source_address(tmp_path: Path) -> None:
    require_smtp(POSTFIX)
    require_dovecot(DOVECOT)
    text = """\
target: {host: 127.0.0.1, port: 25, timeout: 10, source: 127.0.0.2}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - send: MAIL FROM:<bob@smtprun.test>
    expect: 250
  - send: RCPT TO:<alice@smtprun.test>
    expect: 250
  - send: DATA
    expect: 354
  - data: |
      Message-ID: <{{ message_id }}>
      From: bob@smtprun.test
      Subject: from a source address

      Sent from 127.0.0.2.
    expect: 250
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: maildir:/home/alice/Maildir
      within: 15
      headers: {Received: 'from client\\.smtprun\\.test \\([^)]*\\[127\\.0\\.0\\.2\\]\\)'}
      delete: true
"""
    code, out, report = run_json(tmp_path, text)
    assert code == 0, out
    case = report["plans"][0]["cases"][0]
    assert case["source"] == "127.0.0.2" and "connected from 127.0.0.2 to 127.0.0.1:25" in notes(case)
    received = [v for k, v in case["steps"][-1]["details"]["headers"] if k == "Received"]
    assert re.search(r"\[127\.0\.0\.2\]", received[0]), received


def test_a_source_option_this_machine_does_not_have_is_a_usage_error_before_any_session(tmp_path: Path) -> None:
    with EmbeddedServer() as server:
        plan = write_plan(tmp_path, EHLO_PLAN.format(port=server.port, extra="", greeted="."))
        code, out, err = run(plan, "--source", "192.0.2.1", "--no-report")
        assert (code, out) == (2, "")
        assert err == ("smtprun: --source 192.0.2.1: this machine cannot connect from it: "
                       "Cannot assign requested address\n")
        code, out, err = run("check", plan, "-S", "192.0.2.1")  # the machine's setup: UNKNOWN, not CRITICAL
        assert code == 3
        assert out == ("SMTP UNKNOWN - --source 192.0.2.1: this machine cannot connect from it: "
                       "Cannot assign requested address\n")
        code, out, _ = run("check", plan, "-S", "127.0.0.2", "-H", "[::1]")  # as `run` refuses it: UNKNOWN
        assert (code, out) == (3, "SMTP UNKNOWN - --source 127.0.0.2 is an IPv4 address: it cannot reach "
                                  "--host ::1 (IPv6)\n")
        code, out, _ = run("check", plan, "-S", "127.0.0.2")
        assert code == 0 and out.startswith("SMTP OK - ")
    assert not server.messages
