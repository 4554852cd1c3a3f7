"""`smtprun audit DOMAIN`: plans/audit.yaml run for a domain whose MX is Postfix on 127.0.0.1, its records served
by a dnsmasq given with --nameserver; a well-run domain passes, a broken one fails naming what is wrong."""

from __future__ import annotations

import json

from tests.support.cli import run
from tests.support.mtas import CA_PATH, HOSTNAME, POSTFIX, require_smtp
from tests.support.policyserver import policy_server  # noqa: F401 (a fixture)
from tests.support.posture_zones import MANY, sts_records


def _zone(spf: str, *extra: str) -> list[str]:
    return [f"--mx-host=audit.test,{HOSTNAME},10", f"--host-record={HOSTNAME},127.0.0.1",
            f"--txt-record=audit.test,{spf}", "--txt-record=_dmarc.audit.test,v=DMARC1; p=reject",
            *(f"--txt-record=i{n}.many.test,v=spf1 -all" for n in range(11)), *extra]


def _audit(tmp_path, dns, *extra: str, cafile: str = str(CA_PATH)) -> tuple[int, dict, str]:
    report = tmp_path / "audit.json"
    code, out, err = run("audit", "audit.test", "--nameserver", f"{dns.host}:{dns.port}", "--cafile", cafile,
                         "--json", str(report), "--report-dir", str(tmp_path / "html"), *extra)
    cases = {c["name"]: c for plan in json.loads(report.read_text())["plans"] for c in plan["cases"]}
    return code, cases, out + err


def test_a_well_run_domain_passes_and_gets_its_report(tmp_path, dnsmasq_factory):
    require_smtp(POSTFIX)
    code, cases, out = _audit(tmp_path, dnsmasq_factory(*_zone("v=spf1 mx -all")))
    assert code == 0 and all(c["status"] == "passed" for c in cases.values()), out
    assert len(cases) == 3, list(cases)
    assert list((tmp_path / "html").glob("**/*.html")), "no HTML report"
    posture = next(c for name, c in cases.items() if name.startswith("SPF, DMARC"))
    facts = posture["steps"][1]["details"]
    assert (facts["spf"]["lookups"], facts["dmarc"]["p"]) == (1, "reject")


def test_an_spf_record_over_the_lookup_limit_fails_the_audit_by_name(tmp_path, dnsmasq_factory):
    require_smtp(POSTFIX)
    spf = "v=spf1 " + " ".join(MANY) + " -all"
    code, cases, out = _audit(tmp_path, dnsmasq_factory(*_zone(spf)), "--no-report")
    failed = {name: c for name, c in cases.items() if c["status"] != "passed"}
    assert code == 1 and [name.split(" ")[0] for name in failed] == ["SPF,"], out
    assert "11 DNS lookups, over the limit of 10 (RFC 7208 §4.6.4)" in out


def test_an_address_is_not_a_domain_to_audit():
    code, out, err = run("audit", "192.0.2.1")
    assert code == 2 and "Traceback" not in out + err
    assert "smtprun audit: '192.0.2.1' is not a mail domain (give a name such as example.com)" in err


def _with_policy(tmp_path, server) -> tuple[list[str], str]:
    """audit.test's MTA-STS served by the policy server, and a CA file for its certificate and Postfix's."""
    bundle = tmp_path / "cas.pem"
    bundle.write_text(CA_PATH.read_text() + server.cafile.read_text())
    return sts_records(server.address, "audit.test"), str(bundle)


def test_a_domain_with_a_good_mta_sts_policy_passes_with_its_facts(tmp_path, dnsmasq_factory, policy_server):  # noqa: F811
    require_smtp(POSTFIX)
    records, cafile = _with_policy(tmp_path, policy_server)
    dns = dnsmasq_factory(*_zone("v=spf1 mx -all", *records))
    code, cases, out = _audit(tmp_path, dns, "--mta-sts-port", str(policy_server.port), "--no-report", cafile=cafile)
    assert code == 0, out
    tls = next(c for name, c in cases.items() if name.startswith("STARTTLS"))
    facts = next(s["details"] for s in tls["steps"] if s["action"] == "expect_dns")["mta_sts"]
    assert (facts["mode"], facts["mx_hosts"], facts["mx_unmatched"]) == ("enforce", [HOSTNAME], [])
    assert facts["mx_certificates"][HOSTNAME] == {"checked": True, "verified": True, "valid_for_name": True,
                                                  "names": facts["mx_certificates"][HOSTNAME]["names"]}
    assert policy_server.requests == ["mta-sts.audit.test /.well-known/mta-sts.txt"]


def test_a_domain_without_mta_sts_or_tls_rpt_is_not_failed(tmp_path, dnsmasq_factory):
    require_smtp(POSTFIX)
    code, cases, out = _audit(tmp_path, dnsmasq_factory(*_zone("v=spf1 mx -all")), "--no-report")
    assert code == 0, out
    tls = next(c for name, c in cases.items() if name.startswith("STARTTLS"))
    details = next(s["details"] for s in tls["steps"] if s["action"] == "expect_dns")
    assert details["mta_sts"]["record"] is None and details["mta_sts"]["warnings"] == [
        "no MTA-STS record at _mta-sts.audit.test (RFC 8461 §3.1): MTA-STS is optional, senders deliver without it"]
    assert details["tls_rpt"]["record"] is None


def test_an_mta_sts_policy_host_with_an_untrusted_certificate_fails_the_audit(tmp_path, dnsmasq_factory,
                                                                             policy_server):  # noqa: F811
    require_smtp(POSTFIX)
    records, _ = _with_policy(tmp_path, policy_server)
    dns = dnsmasq_factory(*_zone("v=spf1 mx -all", *records))
    code, cases, out = _audit(tmp_path, dns, "--mta-sts-port", str(policy_server.port), "--no-report")
    failed = [name for name, c in cases.items() if c["status"] != "passed"]
    assert code == 1 and failed == [f"STARTTLS with a valid certificate, MTA-STS and TLS-RPT @ {HOSTNAME}"], out
    assert (f"MTA-STS of audit.test: TLS with mta-sts.audit.test (127.0.0.1:{policy_server.port}): certificate "
            "verification failed: unable to get local issuer certificate") in out
