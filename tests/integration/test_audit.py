"""`smtprun audit DOMAIN`: plans/audit.yaml run for a domain whose MX is Postfix on 127.0.0.1, its records served
by a dnsmasq given with --nameserver; a well-run domain passes, a broken one fails naming what is wrong."""

from __future__ import annotations

import json

from tests.support.cli import run
from tests.support.mtas import CA_PATH, HOSTNAME, POSTFIX, require_smtp
from tests.support.posture_zones import MANY


def _zone(spf: str) -> list[str]:
    return [f"--mx-host=audit.test,{HOSTNAME},10", f"--host-record={HOSTNAME},127.0.0.1",
            f"--txt-record=audit.test,{spf}", "--txt-record=_dmarc.audit.test,v=DMARC1; p=reject",
            "--txt-record=_mta-sts.audit.test,v=STSv1; id=20261207",
            *(f"--txt-record=i{n}.many.test,v=spf1 -all" for n in range(11))]


def _audit(tmp_path, dns, *extra: str) -> tuple[int, dict, str]:
    report = tmp_path / "audit.json"
    code, out, err = run("audit", "audit.test", "--nameserver", f"{dns.host}:{dns.port}", "--cafile", str(CA_PATH),
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
