"""The plan library in plans/: each passes (or finds) what its comment says."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import ROOT, run

PLANS = sorted(p.name for p in (ROOT / "plans").glob("*.yaml"))


def test_every_library_plan_validates():
    code, out, err = run("validate", *(str(ROOT / "plans" / p) for p in PLANS))
    assert code == 0, err
    assert out.count(": ok (") == len(PLANS) >= 7


@pytest.mark.parametrize("profile", ["default", "exchange", "postfix"])
def test_smuggling_plan_passes_on_the_embedded_server(profile, tmp_path):
    code, out, err = run("--embedded", "--profile", profile, str(ROOT / "plans/smuggling.yaml"), "--no-report",
                         "--json", str(tmp_path / "r.json"))
    assert code == 0, out + err
    assert "9 passed" in out
    cases = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"]
    verdicts = [s["verdict"] for c in cases for s in c["steps"] if s["action"] == "smuggle"]
    assert len(verdicts) == 9  # aiosmtpd ends data at CRLF.CRLF only: each text is one message
    assert all(v.startswith("not vulnerable: the whole text was taken as one message (250 ") for v in verdicts)
    assert out.count("        verdict: not vulnerable: ") == 9


@pytest.mark.parametrize("profile", ["exchange", "postfix"])
def test_open_relay_plan_passes_where_relaying_is_refused(profile):
    code, out, err = run("--embedded", "--profile", profile, str(ROOT / "plans/open-relay.yaml"), "--no-report")
    assert code == 0, out + err


def test_open_relay_plan_fails_on_an_open_relay():
    code, out, _ = run("--embedded", "--profile", "default", str(ROOT / "plans/open-relay.yaml"), "--no-report")
    assert code == 1 and "step 4" in out and "expected 4xx or 5xx, got 250" in out


@pytest.mark.postfix
def test_open_relay_plan_passes_against_postfix(postfix):
    code, out, err = run(str(ROOT / "plans/open-relay.yaml"), "--host", postfix.host, "--no-report")
    assert code == 0, out + err
