"""A domain's posture as exporter metrics (runner/tools/posture_metrics.py): an expect_dns step probed through the
real `smtprun exporter`, its records served by dnsmasq and its MTA-STS policy by the test policy server."""

from __future__ import annotations

from tests.support.exporter import running_exporter, samples
from tests.support.policyserver import policy_server  # noqa: F401 (a fixture)
from tests.support.posture_zones import DNSBL_RECORDS, dkim_records, sts_records


def test_spf_lookups_dkim_bits_mta_sts_max_age_and_listings_are_metrics(tmp_path, embedded, dnsmasq_factory,
                                                                         policy_server):  # noqa: F811
    dns = dnsmasq_factory("--txt-record=sts.test,v=spf1 mx a:gone.sts.test -all", *dkim_records("sts.test", spf=False),
                          *sts_records(policy_server.address, "sts.test"), *DNSBL_RECORDS)
    folder = tmp_path / "plans"
    folder.mkdir()
    (folder / "posture.yaml").write_text(f"""\
name: posture
target: {{host: 127.0.0.1, port: {embedded.port}, timeout: 5, nameserver: "{dns.host}:{dns.port}"}}
steps:
  - expect: 220
  - expect_dns: {{spf: valid, dkim: {{selector: [s2048, s1024, revoked]}}, domain: sts.test,
                 dnsbl: {{zones: [bl.test, refusing.test], address: 127.0.0.2}},
                 mta_sts: {{policy_port: {policy_server.port}}}, cafile: "{policy_server.cafile}"}}
  - send: QUIT
    expect: 221
""")
    with running_exporter(folder) as exporter:
        status, _, body = exporter.get("/probe?plan=posture")
    assert status == 200
    got = samples(body)
    where = (("case", "posture"), ("domain", "sts.test"), ("step", "2"))
    assert got[("smtprun_spf_dns_lookups", where)] == 2  # mx, a (RFC 7208 §4.6.4)
    assert got[("smtprun_spf_void_lookups", where)] == 1  # gone.sts.test
    bits = {dict(labels)["selector"]: value for (name, labels), value in got.items() if name == "smtprun_dkim_key_bits"}
    assert bits == {"s2048": 2048, "s1024": 1024}  # the revoked key has no size: no series, not a 0
    assert got[("smtprun_mta_sts_max_age_seconds", where)] == 604800
    listed = {dict(labels)["zone"]: value for (name, labels), value in got.items() if name == "smtprun_dnsbl_listed"}
    assert listed == {"bl.test": 1}  # refusing.test refused the query: no verdict, no series
    # the step failed (a revoked key, a listing), and the facts are there all the same; no mailbox metric for it
    assert got[("smtprun_probe_success", ())] == 0
    assert not [name for name, _ in got if name.startswith("smtprun_mailbox")]
