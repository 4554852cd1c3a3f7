"""`expect_dns: {spf: ...}` evaluates the domain's SPF through the plan's name server (a dnsmasq serving the
fixture zones of tests/support/posture_zones.py), for the address the case connected from or one given."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import run, write_plan
from tests.support.posture_zones import spf_records


def _spf_step(tmp_path, embedded, dns, spf: str, domain: str) -> tuple[int, dict, str]:
    """Run a plan whose one DNS step is `expect_dns: {domain: DOMAIN, spf: SPF}`; (status, the step's JSON, out)."""
    plan = write_plan(tmp_path, "target: {host: 127.0.0.1}\nsteps:\n  - expect: 220\n"
                                f"  - expect_dns: {{domain: {domain}, spf: {spf}}}\n  - send: QUIT\n    expect: 221\n")
    report = tmp_path / "r.json"
    code, out, err = run(plan, "--port", str(embedded.port), "--nameserver", f"{dns.host}:{dns.port}",
                         "--json", str(report), "--no-report")
    step = json.loads(report.read_text())["plans"][0]["cases"][0]["steps"][1]
    return code, step, out + err


def test_a_good_domain_passes_the_address_the_case_connected_from(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*spf_records("good.test"))
    code, step, out = _spf_step(tmp_path, embedded, dns, "pass", "good.test")
    assert code == 0 and step["status"] == "passed", out
    spf = step["details"]["spf"]
    assert (spf["ip"], spf["result"], spf["lookups"], spf["void_lookups"], spf["errors"]) == (
        "127.0.0.1", "pass", 3, 0, [])
    assert [child["domain"] for child in spf["tree"]["include"]] == ["_spf.good.test"]


def test_an_address_the_plan_names_is_judged_and_a_wrong_expectation_fails(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*spf_records("good.test"))
    code, step, _ = _spf_step(tmp_path, embedded, dns, "{result: pass, ip: 203.0.113.9}", "good.test")
    assert code == 1 and step["status"] == "failed"
    assert step["reason"] == "SPF of good.test: the result for 203.0.113.9 is fail, expected pass"
    assert step["details"]["spf"]["result"] == "fail"
    code, step, out = _spf_step(tmp_path, embedded, dns, "{result: pass, ip: 198.51.100.7}", "good.test")
    assert code == 0, out  # a:relay.good.test in the included record


@pytest.mark.parametrize(("domain", "lookups", "void", "reason"), [
    ("many.test", 11, 0, "11 DNS lookups, over the limit of 10 (RFC 7208 §4.6.4)"),
    ("void.test", 3, 3, "3 void DNS lookups, over the limit of 2 (RFC 7208 §4.6.4)"),
    ("two.test", 0, 0, "2 SPF records at two.test; RFC 7208 §4.5 allows one"),
    ("loop.test", 2, 0, "redirect loop: loop.test -> loop2.test -> loop.test (RFC 7208 §5.2, §6.1)"),
    ("noinclude.test", 1, 1, "include:gone.noinclude.test: gone.noinclude.test has no SPF record (RFC 7208 §5.2)"),
])
def test_a_broken_record_is_a_permerror_that_keeps_its_facts(tmp_path, embedded, dnsmasq_factory,
                                                              domain, lookups, void, reason):
    dns = dnsmasq_factory(*spf_records(domain))
    code, step, _ = _spf_step(tmp_path, embedded, dns, "pass", domain)
    assert code == 1 and step["status"] == "failed"
    assert step["reason"] == f"SPF of {domain}: the result for 127.0.0.1 is permerror, expected pass; {reason}"
    spf = step["details"]["spf"]
    assert (spf["lookups"], spf["void_lookups"], spf["errors"]) == (lookups, void, [reason])


def test_valid_judges_the_record_whatever_the_address(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*spf_records("good.test", "many.test"))
    code, step, out = _spf_step(tmp_path, embedded, dns, "{ip: 203.0.113.9}", "good.test")
    assert code == 0 and step["details"]["spf"]["result"] == "fail", out
    code, step, out = _spf_step(tmp_path, embedded, dns, "valid", "good.test")
    assert code == 0, out
    code, step, _ = _spf_step(tmp_path, embedded, dns, "valid", "many.test")
    assert code == 1 and step["reason"] == "SPF of many.test: 11 DNS lookups, over the limit of 10 (RFC 7208 §4.6.4)"


def test_a_macro_names_the_connected_address(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*spf_records("macro.test"))
    code, step, out = _spf_step(tmp_path, embedded, dns, "pass", "macro.test")
    assert code == 0 and step["details"]["spf"]["lookups"] == 1, out  # exists:%{ir}._spf.macro.test
    code, step, _ = _spf_step(tmp_path, embedded, dns, "{result: fail, ip: 127.0.0.9}", "macro.test")
    assert code == 0 and step["details"]["spf"]["void_lookups"] == 1


def test_plus_all_fails_the_step_though_every_sender_passes(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*spf_records("plusall.test"))
    code, step, _ = _spf_step(tmp_path, embedded, dns, "pass", "plusall.test")
    assert code == 1 and step["details"]["spf"]["result"] == "pass"
    assert step["reason"] == "SPF of plusall.test: '+all' passes every sender in the world (RFC 7208 §5.1, §8.3)"


def test_spf_present_still_only_asks_for_one_record(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*spf_records("many.test", "two.test"))
    code, step, out = _spf_step(tmp_path, embedded, dns, "present", "many.test")
    assert code == 0 and "details" not in step, out
    code, step, _ = _spf_step(tmp_path, embedded, dns, "present", "two.test")
    assert code == 1 and step["reason"] == "2 SPF records at two.test; RFC 7208 §4.5 allows one"


def test_a_result_that_is_not_one_is_refused_with_the_plans_line(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*spf_records("good.test"))
    plan = write_plan(tmp_path, "target: {host: 127.0.0.1}\nsteps:\n  - expect: 220\n"
                                "  - expect_dns: {domain: good.test, spf: passed}\n")
    code, out, err = run(plan, "--port", str(embedded.port), "--nameserver", f"{dns.host}:{dns.port}",
                         "--no-report")
    assert code != 0 and "plan.yaml:4" in out + err and "Traceback" not in out + err, out + err
