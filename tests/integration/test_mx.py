"""Plans with `target: {mx: ...}` against dnsmasq on loopback and the embedded server."""

from __future__ import annotations

import hashlib
import json
import ssl
import time

import pytest
import trustme

from runner.net.x509 import subject_public_key_info
from runner.tools.server import EmbeddedServer, ServerTls, server_tls_context
from tests.support.cli import run, write_plan
from tests.support.dnsmasq import null_mx_rr, tlsa_rr

PLAN = """\
target: {{mx: {domain}, port: {port}, timeout: 2, nameserver: "127.0.0.1:{dns}"{extra}}}
steps:
  - expect: 220
  - send: EHLO smtprun.test
    expect: 250
  - send: QUIT
    expect: 221
"""


@pytest.fixture
def server():
    with EmbeddedServer() as s:  # listens on 127.0.0.1 only: 127.0.0.2 on the same port refuses
        yield s


@pytest.fixture
def dns(dnsmasq_factory):
    return dnsmasq_factory(
        "--mx-host=example.test,mx1.example.test,10",
        "--mx-host=example.test,mx2.example.test,20",
        "--host-record=mx1.example.test,127.0.0.2",
        "--host-record=mx2.example.test,127.0.0.1",
        null_mx_rr("nullmx.test"),
    )


def results(path) -> list[dict]:
    return json.loads(path.read_text())["plans"][0]["cases"]


def test_preferred_mx_down_falls_back_to_the_next(tmp_path, server, dns):
    plan = write_plan(tmp_path, PLAN.format(domain="example.test", port=server.port, dns=dns.port, extra=""))
    code, out, err = run(plan, "--json", str(tmp_path / "r.json"), "--report-dir", str(tmp_path / "reports"))
    assert code == 0, out + err
    [case] = results(tmp_path / "r.json")
    assert case["peer"] == f"127.0.0.1:{server.port}"
    notes = "\n".join(case["notes"])
    assert f"skipped cannot connect to mx1.example.test [127.0.0.2]:{server.port}" in notes
    assert "connected to MX mx2.example.test (preference 20)" in notes
    report = next((tmp_path / "reports").glob("plan-*.html")).read_text()
    assert "MX for example.test" in report  # the lookup, every exchanger with its addresses
    assert f"skipped cannot connect to mx1.example.test [127.0.0.2]:{server.port}" in report
    assert "connected to MX mx2.example.test (preference 20)" in report


def test_all_mx_hosts_are_separate_results(tmp_path, server, dns):
    plan = write_plan(tmp_path, PLAN.format(domain="example.test", port=server.port, dns=dns.port,
                                            extra=", all: true"))
    code, out, _ = run(plan, "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 1
    cases = {c["name"]: c["status"] for c in results(tmp_path / "r.json")}
    assert cases == {"plan @ mx1.example.test": "failed", "plan @ mx2.example.test": "passed"}
    assert "1 passed, 1 failed" in out


def test_nxdomain_fails_fast_with_the_query_named(tmp_path, dns):
    plan = write_plan(tmp_path, PLAN.format(domain="nosuch.test", port=25, dns=dns.port, extra=""))
    t0 = time.monotonic()
    code, out, _ = run(plan, "--no-report", "--json", str(tmp_path / "r.json"))
    assert code == 1
    assert "NXDOMAIN for nosuch.test MX" in out
    assert time.monotonic() - t0 < 2
    assert 0 < json.loads((tmp_path / "r.json").read_text())["plans"][0]["dns_seconds"] < 2  # a lookup was made


def test_an_ip_address_as_mx_domain_is_named_so(tmp_path, dns):
    plan = write_plan(tmp_path, PLAN.format(domain="'127.0.0.1'", port=25, dns=dns.port, extra=""))
    code, out, _ = run(plan, "--no-report")
    assert code == 1
    assert "127.0.0.1 is an IP address, not a mail domain (RFC 5321 §5.1): name it as a host to connect to it" in out
    assert "query[MX] 127.0.0.1" not in dns.log.read_text()  # nothing asked


def test_null_mx_is_a_clear_failure(tmp_path, dns):
    plan = write_plan(tmp_path, PLAN.format(domain="nullmx.test", port=25, dns=dns.port, extra=""))
    code, out, _ = run(plan, "--no-report")
    assert code == 1 and "null MX (RFC 7505): nullmx.test accepts no mail" in out


def test_a_templated_target_is_reported_as_rendered(tmp_path, server, dns):
    """`mx: "{{ domain }}"` and `host: "{{ h }}"`: the reports name what was used, so one run's report is
    not compared with another domain's as the same target's."""
    text = PLAN.format(domain='"{{ domain }}"', port=server.port, dns=dns.port, extra="")
    plan = write_plan(tmp_path, text.replace("steps:", "vars: {domain: x.test}\nsteps:"))
    for domain in ("example.test", "nosuch.test"):
        run(plan, "--var", f"domain={domain}", "--json", str(tmp_path / f"{domain}.json"), "--no-report")
        report = json.loads((tmp_path / f"{domain}.json").read_text())["plans"][0]
        assert (report["target"], report["cases"][0]["target"]) == (f"MX {domain}:{server.port}",) * 2
    host = write_plan(tmp_path, f'target: {{host: "{{{{ h }}}}", port: {server.port}}}\nvars: {{h: x}}\n'
                                "steps:\n  - expect: 220\n", name="host.yaml")
    run(host, "--var", "h=127.0.0.1", "--json", str(tmp_path / "host.json"), "--no-report")
    report = json.loads((tmp_path / "host.json").read_text())["plans"][0]
    assert (report["target"], report["cases"][0]["target"]) == (f"127.0.0.1:{server.port}",) * 2


def test_nameserver_on_the_command_line(tmp_path, server, dns):
    plan = write_plan(tmp_path, PLAN.format(domain="example.test", port=server.port, dns=1, extra="")
                      .replace(', nameserver: "127.0.0.1:1"', ""))
    code, out, err = run(plan, "--nameserver", f"127.0.0.1:{dns.port}", "--no-report")
    assert code == 0, out + err
    code, _, err = run(plan, "--nameserver", "not-an-ip", "--no-report")
    assert code == 2 and "not-an-ip" in err


@pytest.fixture(scope="module")
def mx_ca():
    ca = trustme.CA()
    return ca, ca.issue_cert("mx.test"), ca.issue_cert("mx.test")


@pytest.mark.parametrize(("which", "matches"), [("presented", True), ("other", False)])
def test_unsigned_tlsa_records_are_not_usable_whether_they_match_or_not(tmp_path, dnsmasq_factory, mx_ca, which,
                                                                         matches):
    """expect_dns tlsa: match is DANE as expect_tls judges it: dnsmasq serves the records unsigned, and a DANE
    sender ignores those (RFC 7672 §2.2), so the step fails either way; its details say whether one matched."""
    ca, presented, other = mx_ca
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    presented.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    der = ssl.PEM_cert_to_DER_cert((presented if which == "presented" else other).cert_chain_pems[0].bytes().decode())
    with EmbeddedServer(tls=ServerTls(server_tls_context(str(tmp_path / "server.pem")))) as srv:
        dns = dnsmasq_factory(
            "--mx-host=tlsa.test,mx.test,10",
            "--host-record=mx.test,127.0.0.1",
            tlsa_rr(f"_{srv.port}._tcp.mx.test", 3, 1, 1, hashlib.sha256(subject_public_key_info(der)).digest()),
        )
        plan = write_plan(tmp_path, f"""\
target: {{mx: tlsa.test, port: {srv.port}, timeout: 3, nameserver: "127.0.0.1:{dns.port}"}}
steps:
  - expect: 220
  - send: EHLO smtprun.test
    expect: 250
  - starttls: {{cafile: "{tmp_path / 'ca.pem'}"}}
  - expect_dns: {{tlsa: match}}
""")
        code, out, _ = run(plan, "--no-report", "--json", str(tmp_path / "run.json"))
    step = json.loads((tmp_path / "run.json").read_text())["plans"][0]["cases"][0]["steps"][3]
    assert code == 1, out
    assert step["reason"] == (f"the TLSA records at _{srv.port}._tcp.mx.test are not DNSSEC-signed (insecure): "
                              "DANE without DNSSEC is not usable (RFC 7672 §2.2)"
                              + ("" if matches else "; no usable TLSA record matches the chain the server sends: "
                                 f"{step['details']['tlsa']['unmatched'][0]} (DANE-EE) does not match the "
                                 "server's certificate"))
    assert bool(step["details"]["tlsa"]["matched"]) is matches
