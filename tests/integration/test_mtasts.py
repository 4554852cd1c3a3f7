"""`expect_dns: {mta_sts: ...}` fetches the policy from a real HTTPS server on loopback (tests/support/policyserver.py)
whose policy hosts a dnsmasq resolves, and judges it against the domain's MX hosts as a sending MTA would."""

from __future__ import annotations

import pytest

from tests.support.dnsstep import run_dns_step
from tests.support.policyserver import policy_server  # noqa: F401 (a fixture)
from tests.support.posture_zones import sts_records


@pytest.fixture
def sts(tmp_path, embedded, dnsmasq_factory, policy_server):  # noqa: F811
    dns = dnsmasq_factory(*sts_records(policy_server.address))

    def check(domain: str, mta_sts: str = "{mode: enforce, policy_port: PORT}", cafile: str | None = None):
        cafile = str(policy_server.cafile) if cafile is None else cafile
        mta_sts = mta_sts.replace("PORT", str(policy_server.port))
        return run_dns_step(tmp_path, embedded.port, dns, f"domain: {domain}, mta_sts: {mta_sts}, cafile: '{cafile}'")

    check.server = policy_server
    return check


def test_a_good_policy_covers_every_mx_and_keeps_its_facts(sts):
    code, step, out = sts("sts.test")
    assert code == 0 and step["status"] == "passed", out
    facts = step["details"]["mta_sts"]
    assert (facts["id"], facts["mode"], facts["max_age"], facts["mx"], facts["mx_hosts"], facts["mx_unmatched"]) == (
        "20261207T1", "enforce", 604800, ["*.sts.test"], ["mx1.sts.test", "mx2.sts.test"], [])
    assert (facts["status"], facts["content_type"], facts["policy_host_addresses"]) == (
        200, "text/plain; charset=utf-8", ["127.0.0.1"])
    assert facts["url"] == f"https://mta-sts.sts.test:{sts.server.port}/.well-known/mta-sts.txt"
    assert sts.server.requests == ["mta-sts.sts.test /.well-known/mta-sts.txt"]


def test_an_enforce_policy_that_misses_an_mx_fails_naming_it(sts):
    code, step, _ = sts("stsmiss.test")
    assert code == 1
    assert step["reason"] == (
        "MTA-STS of stsmiss.test: the policy's mx patterns (mx1.stsmiss.test) do not cover the MX host "
        "mx2.stsmiss.test (RFC 8461 §4.1): senders that enforce the policy will not deliver there")
    assert step["details"]["mta_sts"]["mx_unmatched"] == ["mx2.stsmiss.test"]


def test_a_testing_policy_that_misses_an_mx_only_warns(sts):
    code, step, out = sts("ststesting.test", "{policy_port: PORT}")
    assert code == 0, out
    facts = step["details"]["mta_sts"]
    assert facts["mode"] == "testing" and facts["mx_unmatched"] == ["mx2.ststesting.test"]
    assert any("in testing mode senders only report it" in w for w in facts["warnings"])
    code, step, _ = sts("ststesting.test")  # but not when the plan asks for enforce
    assert code == 1 and step["reason"] == "MTA-STS of ststesting.test: the policy's mode is testing, expected enforce"


@pytest.mark.parametrize(("domain", "reason"), [
    ("stsbadcert.test", "TLS with mta-sts.stsbadcert.test (127.0.0.1:PORT): certificate verification failed: "
                        "unable to get local issuer certificate"),
    ("stsredirect.test", "https://mta-sts.stsredirect.test:PORT/.well-known/mta-sts.txt answered 301 Moved "
                         "Permanently, a redirect to https://mta-sts.sts.test/.well-known/mta-sts.txt: senders must "
                         "not follow redirects (RFC 8461 §3.3)"),
    ("stsbig.test", "the policy at https://mta-sts.stsbig.test:PORT/.well-known/mta-sts.txt is larger than 64 KiB: "
                    "senders do not read it (RFC 8461 §3.3)"),
    ("stsjson.test", "the policy is served as application/json, not text/plain (RFC 8461 §3.3)"),
    ("stsbroken.test", "the policy: mode is enforcing, not one of enforce, testing, none (RFC 8461 §3.2); the policy: "
                       "max_age 99999999 is over 31557600 seconds, a year (RFC 8461 §3.2)"),
])
def test_a_policy_served_wrong_fails_saying_how(sts, domain, reason):
    code, step, out = sts(domain, "{policy_port: PORT}")
    assert code == 1 and "Traceback" not in out
    assert step["reason"] == f"MTA-STS of {domain}: " + reason.replace("PORT", str(sts.server.port))
    assert step["details"]["mta_sts"]["record"] == "v=STSv1; id=20261207T1"
    assert sts.server.requests[-1:] in ([], [f"mta-sts.{domain} /.well-known/mta-sts.txt"])


def test_the_redirect_is_not_followed(sts):
    sts("stsredirect.test")
    assert sts.server.requests == ["mta-sts.stsredirect.test /.well-known/mta-sts.txt"]


def test_without_the_test_ca_the_policy_host_is_not_trusted(sts):
    code, step, _ = sts("sts.test", cafile="")  # the system's store, which does not know the test CA
    assert code == 1 and "certificate verification failed" in step["reason"]


def test_a_domain_without_mta_sts_passes_valid_with_a_warning_and_fails_required(sts):
    code, step, out = sts("nosts.test", "valid")
    assert code == 0, out
    assert step["details"]["mta_sts"]["warnings"] == [
        "no MTA-STS record at _mta-sts.nosts.test (RFC 8461 §3.1): MTA-STS is optional, senders deliver without it"]
    code, step, _ = sts("nosts.test", "required")
    assert code == 1 and step["reason"] == "MTA-STS of nosts.test: no MTA-STS record at _mta-sts.nosts.test " \
                                           "(RFC 8461 §3.1)"
