"""`smtprun audit DOMAIN`: plans/audit.yaml run for a domain whose MX is Postfix on 127.0.0.1, its records served
by a dnsmasq given with --nameserver; a well-run domain passes, a broken one fails naming what is wrong."""

from __future__ import annotations

import html
import json
import re

from tests.support.cli import run
from tests.support.mtas import CA_PATH, HOSTNAME, POSTFIX, require_smtp
from tests.support.policyserver import policy_server  # noqa: F401 (a fixture)
from tests.support.posture_zones import DNSBL_RECORDS, MANY, dkim_records, sts_records


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
    # nothing named to check DKIM keys or blocklists with, and dnsmasq signs nothing: warnings, in every output
    warnings = ["warning: DKIM: no DKIM selector named: no key checked (selectors cannot be listed from DNS; name "
                "them with dkim.selector)",
                "warning: Blocklists: no blocklist zone named: no address looked up (name the DNSBL zones with "
                "dnsbl.zones)"]
    said = [note for note in posture["notes"] if note.startswith("warning:")]
    assert said[:2] == warnings and said[2].startswith("warning: DNSSEC: not signed"), said
    page = _pages(tmp_path)
    assert all(warning in out and warning in page for warning in warnings), out


def test_an_spf_record_over_the_lookup_limit_fails_the_audit_by_name(tmp_path, dnsmasq_factory):
    require_smtp(POSTFIX)
    spf = "v=spf1 " + " ".join(MANY) + " -all"
    code, cases, out = _audit(tmp_path, dnsmasq_factory(*_zone(spf)), "--no-report")
    failed = {name: c for name, c in cases.items() if c["status"] != "passed"}
    assert code == 1 and [name.split(" ")[0] for name in failed] == ["SPF,"], out
    assert "11 DNS lookups, over the limit of 10 (RFC 7208 §4.6.4)" in out
    assert "domain audit.test" in out and "{{" not in out  # the expected line as the step ran it, not its templates


def _pages(tmp_path) -> str:
    """The text of every HTML page of the audit, tags and entities undone."""
    return "\n".join(html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
                     for page in (tmp_path / "html").glob("**/*.html"))


_LISTING = ["--host-record=1.0.0.127.listing.test,127.0.0.2",  # the MX's address, 127.0.0.1, listed
            "--txt-record=1.0.0.127.listing.test,Listed for the audit test"]


def test_named_dkim_keys_and_blocklists_of_a_well_run_domain_pass_with_their_facts(tmp_path, dnsmasq_factory):
    require_smtp(POSTFIX)
    dns = dnsmasq_factory(*_zone("v=spf1 mx -all", *dkim_records("audit.test", spf=False), *DNSBL_RECORDS))
    code, cases, out = _audit(tmp_path, dns, "--dkim-selector", "s2048", "--dnsbl", "bl.test", "--no-report")
    assert code == 0, out
    posture = next(c for name, c in cases.items() if name.startswith("SPF, DMARC"))
    facts = posture["steps"][1]["details"]
    assert [(k["selector"], k["bits"]) for k in facts["dkim"]["keys"]] == [("s2048", 2048)]
    assert (facts["dnsbl"]["addresses"], facts["dnsbl"]["zones"], facts["dnsbl"]["listed"]) == (
        ["127.0.0.1"], ["bl.test"], [])
    assert [n["status"] for n in facts["dnssec"]["names"]] == ["insecure"] * 3
    assert [n.split(":")[1] for n in posture["notes"] if n.startswith("warning:")] == [" DNSSEC"], posture["notes"]


def test_a_weak_dkim_key_and_a_listed_mx_fail_the_audit_by_name(tmp_path, dnsmasq_factory):
    require_smtp(POSTFIX)
    dns = dnsmasq_factory(*_zone("v=spf1 mx -all", *dkim_records("audit.test", spf=False), *_LISTING))
    code, cases, out = _audit(tmp_path, dns, "--dkim-selector", "s1024", "--dkim-selector", "s768",
                              "--dnsbl", "listing.test")
    failed = [name for name, c in cases.items() if c["status"] != "passed"]
    assert code == 1 and failed == [f"SPF, DMARC, DKIM keys, blocklists and DNSSEC of the domain @ {HOSTNAME}"], out
    weak = ("DKIM keys of audit.test: selector s768: the RSA key has 768 bits, under 1024: verifiers refuse its "
            "signatures (RFC 8301 §3.2)")
    listed = "Blocklists: 127.0.0.1 is listed in listing.test (127.0.0.2: Listed for the audit test)"
    # 1024 bits is what RFC 8301 §3.2 still lets verifiers accept: a warning, not a failure
    short = ("warning: DKIM: selector s1024: the RSA key has 1024 bits, under the 2048 signers should use (RFC 8301 "
             "§3.2)")
    step = cases[failed[0]]["steps"][1]
    assert step["reason"] == f"{weak}; {listed}"
    assert step["details"]["dnsbl"]["listed"][0]["zone"] == "listing.test"
    assert short in cases[failed[0]]["notes"]
    page = _pages(tmp_path)
    assert all(said in out and said in page for said in (weak, listed, short)), out


def test_a_selector_or_zone_that_is_not_a_dns_name_is_refused():
    code, out, err = run("audit", "audit.test", "--dnsbl", "zen.spamhaus.org", "--dkim-selector", "s 1")
    assert code == 2 and "Traceback" not in out + err
    assert "argument --dkim-selector: 's 1' is not a DNS name" in err


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


def test_a_name_dns_cannot_ask_for_is_refused_before_anything_is_looked_up():
    for given in ("bad domain!", "a..b", "x" * 64 + ".example"):
        code, out, err = run("audit", given)
        assert code == 2 and "Traceback" not in out + err, given
        assert f"smtprun audit: {given!r} is not a mail domain" in err
