"""A domain plan pointed at one host with --host: its DNS checks still look up the plan's mail domain
(SPF and DMARC of smtprun.test), not the address connected to."""

from __future__ import annotations

import json

from tests.support.cli import ROOT, run
from tests.support.mtas import CA_PATH, HOSTNAME, POSTFIX, require_smtp

DOMAIN_MX = str(ROOT / "plans/domain-mx.yaml")


def _records(dnsmasq_factory):
    return dnsmasq_factory(f"--mx-host=smtprun.test,{HOSTNAME},10", f"--host-record={HOSTNAME},127.0.0.1",
                           "--txt-record=smtprun.test,v=spf1 mx -all",
                           "--txt-record=_dmarc.smtprun.test,v=DMARC1; p=reject")


def test_domain_mx_with_host_checks_the_plans_domain(tmp_path, dnsmasq_factory):
    require_smtp(POSTFIX)
    dns = _records(dnsmasq_factory)
    report = tmp_path / "r.json"
    _, out, err = run(DOMAIN_MX, "--host", f"127.0.0.1:{POSTFIX.port}", "--var", "domain=smtprun.test",
                      "--var", f"cafile={CA_PATH}", "--nameserver", f"{dns.host}:{dns.port}",
                      "--json", str(report), "--no-report")
    cases = {c["name"]: c for c in json.loads(report.read_text())["plans"][0]["cases"]}
    dns_case = cases["SPF and DMARC published"]
    assert dns_case["status"] == "passed", out + err
    assert "spf of smtprun.test: ok; dmarc of smtprun.test: ok" in json.dumps(dns_case), dns_case
    assert "127.0.0.1 TXT" not in out + err


def test_a_domain_check_with_only_an_address_says_there_is_no_domain(tmp_path, dnsmasq_factory):
    require_smtp(POSTFIX)
    dns = _records(dnsmasq_factory)
    plan = tmp_path / "p.yaml"
    plan.write_text(f"target: {{host: 127.0.0.1, port: {POSTFIX.port}}}\n"
                    "steps:\n  - expect: 220\n  - expect_dns: {spf: present}\n  - send: QUIT\n    expect: 221\n")
    report = tmp_path / "r.json"
    code, *_ = run(str(plan), "--nameserver", f"{dns.host}:{dns.port}", "--json", str(report), "--no-report")
    step = json.loads(report.read_text())["plans"][0]["cases"][0]["steps"][1]
    assert code == 1 and step["status"] == "failed"
    assert step["reason"] == ("no mail domain to look up: the run connects to the address 127.0.0.1; give the plan "
                              "target.mx or the step expect_dns.domain")
