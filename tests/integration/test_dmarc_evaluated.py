"""`expect_dns: {dmarc: ...}` judges the DMARC record the domain's mail is judged by, through the plan's name
server (a dnsmasq serving the fixture zones of tests/support/posture_zones.py)."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import run, write_plan
from tests.support.posture_zones import dmarc_records


def _dmarc_step(tmp_path, embedded, dns, dmarc: str, domain: str) -> tuple[int, dict, str]:
    """Run a plan whose one DNS step is `expect_dns: {domain: DOMAIN, dmarc: DMARC}`; (status, the step, out)."""
    step = f"  - expect_dns: {{domain: {domain}, dmarc: {dmarc}}}\n"
    plan = write_plan(tmp_path, "target: {host: 127.0.0.1}\nsteps:\n  - expect: 220\n" + step
                      + "  - send: QUIT\n    expect: 221\n")
    report = tmp_path / "r.json"
    code, out, err = run(plan, "--port", str(embedded.port), "--nameserver", f"{dns.host}:{dns.port}",
                         "--json", str(report), "--no-report")
    step = json.loads(report.read_text())["plans"][0]["cases"][0]["steps"][1]
    return code, step, out + err


def test_a_good_record_is_valid_with_its_policy(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*dmarc_records("good.test"))
    code, step, out = _dmarc_step(tmp_path, embedded, dns, "{p: reject}", "good.test")
    assert code == 0 and step["status"] == "passed", out
    facts = step["details"]["dmarc"]
    assert (facts["location"], facts["p"], facts["sp"], facts["pct"], facts["adkim"], facts["errors"]) == (
        "_dmarc.good.test", "reject", "reject", 100, "s", [])
    code, step, _ = _dmarc_step(tmp_path, embedded, dns, "{p: quarantine}", "good.test")
    assert code == 1
    assert step["reason"] == "DMARC of good.test: the policy is reject (_dmarc.good.test), expected quarantine"


def test_a_subdomain_inherits_the_organisational_domains_sp(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*dmarc_records("mail.inherit.test"))
    code, step, out = _dmarc_step(tmp_path, embedded, dns, "{p: reject}", "mail.inherit.test")
    assert code == 0, out
    facts = step["details"]["dmarc"]
    assert (facts["location"], facts["inherited"], facts["p"], facts["policy"]) == (
        "_dmarc.inherit.test", True, "quarantine", "reject")


@pytest.mark.parametrize(("domain", "reason"), [
    ("nodmarc.test", "no DMARC record at _dmarc.nodmarc.test (RFC 7489 §6.6.3)"),
    ("bogus.test", "p=bogus is not a policy: none, quarantine, reject (RFC 7489 §6.3)"),
    ("extrua.test", "rua destination collector.test has not authorised reports for extrua.test: no v=DMARC1 record "
                    "at extrua.test._report._dmarc.collector.test (RFC 7489 §7.1)"),
])
def test_a_missing_or_broken_record_fails_valid_naming_why(tmp_path, embedded, dnsmasq_factory, domain, reason):
    dns = dnsmasq_factory(*dmarc_records(domain))
    code, step, _ = _dmarc_step(tmp_path, embedded, dns, "valid", domain)
    assert code == 1 and step["status"] == "failed"
    assert step["reason"] == f"DMARC of {domain}: {reason}"
    assert step["details"]["dmarc"]["errors"] == [reason]


def test_an_authorised_external_destination_passes(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*dmarc_records("authrua.test"))
    code, step, out = _dmarc_step(tmp_path, embedded, dns, "valid", "authrua.test")
    assert code == 0 and step["details"]["dmarc"]["rua"] == ["mailto:reports@collector.test"], out


def test_dmarc_present_still_only_asks_for_the_record(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*dmarc_records("bogus.test"))
    code, step, out = _dmarc_step(tmp_path, embedded, dns, "present", "bogus.test")
    assert code == 0 and "details" not in step, out
