"""`expect_dns: {tls_rpt: ...}` reads the domain's TLS reporting record (RFC 8460) through a fixture dnsmasq."""

from __future__ import annotations

from tests.support.dnsstep import run_dns_step
from tests.support.posture_zones import tlsrpt_records


def test_a_valid_record_passes_with_its_report_addresses(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*tlsrpt_records())
    code, step, out = run_dns_step(tmp_path, embedded.port, dns, "domain: sts.test, tls_rpt: required")
    assert code == 0, out
    assert step["details"]["tls_rpt"]["rua"] == ["mailto:tlsrpt@sts.test", "https://r.sts.test/v1"]


def test_a_report_address_of_another_scheme_fails_by_name(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*tlsrpt_records())
    code, step, _ = run_dns_step(tmp_path, embedded.port, dns, "domain: rptbroken.test, tls_rpt: valid")
    assert code == 1
    assert step["reason"] == ("TLS-RPT of rptbroken.test: rua: 'ftp://reports.rptbroken.test/' is neither a mailto: "
                              "nor an https: URI (RFC 8460 §3)")


def test_no_record_is_a_warning_for_valid_and_a_failure_for_required(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*tlsrpt_records())
    code, step, out = run_dns_step(tmp_path, embedded.port, dns, "domain: rptnone.test, tls_rpt: valid")
    assert code == 0, out
    assert step["details"]["tls_rpt"]["warnings"] == ["no TLS-RPT record at _smtp._tls.rptnone.test (RFC 8460 §3): "
                                                      "TLS reporting is optional, senders send no reports"]
    code, step, _ = run_dns_step(tmp_path, embedded.port, dns, "domain: rptnone.test, tls_rpt: required")
    assert code == 1 and step["reason"] == "TLS-RPT of rptnone.test: no TLS-RPT record at _smtp._tls.rptnone.test " \
                                           "(RFC 8460 §3)"
