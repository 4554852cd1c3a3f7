"""Plans against a real Postfix on 127.0.0.1:25, configured by scripts/test-env.sh."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import ROOT, run, write_plan

pytestmark = pytest.mark.postfix

LOCAL = ["--var", "rcpt=root@localhost", "--var", "sender=smtprun@example.com"]


def test_exchange_plan_passes_against_postfix(postfix):
    code, out, err = run(str(ROOT / "plans/exchange.yaml"), "--host", postfix.host, "--port", str(postfix.port),
                         *LOCAL, "--no-report")
    assert code == 0, out + err
    assert "2 passed" in out


def test_postfix_plan_passes(postfix, tmp_path):
    code, out, err = run(str(ROOT / "plans/postfix.yaml"), "--host", postfix.host, "--port", str(postfix.port),
                         "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    cases = {c["name"]: c for c in json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"]}
    delivery = cases["local delivery with a delivery receipt"]
    assert delivery["steps"][5]["captures"]["queue_id"]
    bdat = cases["BDAT in chunks"]["transcript"]
    assert sum(e["data"].startswith("BDAT ") for e in bdat if e["dir"] == "C") > 2
    assert any(e["data"].startswith("BDAT ") and " LAST\\r\\n" in e["data"] for e in bdat)


def test_wrong_expectation_against_postfix_names_step_and_line(postfix, tmp_path):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, timeout: 10}
steps:
  - expect: 220
  - send: EHLO smtprun.test
    expect: 250
  - send: "MAIL FROM:<a@example.com>"
    expect: 250
  - send: "RCPT TO:<someone@example.org>"
    expect: 250
""")
    code, out, _ = run(plan, "--port", str(postfix.port), "--no-report")
    assert code == 1
    assert f"step 4 at {plan}:8" in out
    assert "554 5.7.1" in out and "Relay access denied" in out


def test_starttls_against_postfix_with_the_test_ca(postfix):
    code, out, err = run(str(ROOT / "plans/starttls.yaml"), "--host", postfix.host, "--port", str(postfix.port),
                         "--var", f"cafile={postfix.ca_path}", "--no-report")
    assert code == 0, out + err


def test_starttls_against_postfix_fails_for_the_wrong_name(postfix, tmp_path):
    plan = write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, timeout: 10}}
steps:
  - expect: 220
  - send: EHLO smtprun.test
    expect: 250
  - starttls: {{cafile: "{postfix.ca_path}", server_name: wrong.example}}
""")
    code, out, _ = run(plan, "--port", str(postfix.port), "--no-report")
    assert code == 1
    assert "certificate verification failed: Hostname mismatch" in out


def test_pipelining_misordered_reply_fails_at_the_right_command(postfix, tmp_path):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, timeout: 10}
steps:
  - expect: 220
  - send: EHLO smtprun.test
    expect: 250
  - pipeline:
      - send: "MAIL FROM:<a@example.com>"
        expect: 250
      - send: "RCPT TO:<nosuchuser@localhost>"
        expect: 250
""")
    code, out, _ = run(plan, "--port", str(postfix.port), "--no-report")
    assert code == 1
    assert "why:      reply 2 of 2 (RCPT TO:<nosuchuser@localhost>): expected 250, got 550\n" in out
    assert "got:      550 5.1.1" in out
