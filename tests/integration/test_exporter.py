"""`smtprun exporter`: /probe answered in the Prometheus text format, run against the real Postfix."""

from __future__ import annotations

import os
import re
import select
import socket
import ssl
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509

from runner.tools.server import EmbeddedServer, ServerTls, server_tls_context
from tests.support.certs import chain_server
from tests.support.cli import ROOT
from tests.support.exporter import running_exporter, samples
from tests.support.faults import BANNER, Concurrency, FaultServer, Peer
from tests.support.mailplans import send_plan
from tests.support.monitoring import dead_port
from tests.support.mtas import DOVECOT, EXIM, require_dovecot, require_smtp

SMOKE = """\
name: smoke
target: {host: 127.0.0.1, port: 25, timeout: 5}
steps:
  - expect: 220
  - send: EHLO smtprun.test
    expect: 250
  - starttls: {cafile: /etc/smtprun-test/ca.pem}
  - send: QUIT
    expect: 221
"""
BROKEN = 'target: {host: 127.0.0.1}\nsteps:\n  - send: "EHLO {{ nope }}"\n    expect: 250\n'


def plan(name: str, port: int, timeout: float = 30) -> str:
    return f"name: {name}\ntarget: {{host: 127.0.0.1, port: {port}, timeout: {timeout}}}\n" \
           "steps:\n  - expect: 220\n  - send: QUIT\n    expect: 221\n"


@pytest.fixture
def plans(tmp_path, postfix):
    folder = tmp_path / "plans"
    folder.mkdir()
    (folder / "smoke.yaml").write_text(SMOKE)
    (folder / "broken.yaml").write_text(BROKEN)
    return folder


@pytest.fixture
def exporter(plans):
    with running_exporter(plans, "--allow-target", "127.0.0.1:*") as running:
        yield running


def test_probe_against_postfix_in_the_prometheus_text_format(exporter):
    status, content_type, body = exporter.get("/probe?plan=smoke")
    assert (status, content_type) == (200, "text/plain; version=0.0.4; charset=utf-8")
    got = samples(body)
    assert got[("smtprun_probe_success", ())] == 1
    assert got[("smtprun_case_success", (("case", "smoke"),))] == 1
    codes = [got[("smtprun_step_reply_code", (("action", a), ("case", "smoke"), ("step", str(i))))]
             for i, a in enumerate(("expect", "send", "starttls", "send"), 1)]
    assert codes == [220, 250, 220, 221]
    assert 0 < got[("smtprun_probe_duration_seconds", ())] < 5
    assert got[("smtprun_step_duration_seconds", (("action", "starttls"), ("case", "smoke"), ("step", "3")))] > 0
    expiry = got[("smtprun_ssl_earliest_cert_expiry", ())]
    assert time.time() + 30 * 86400 < expiry < time.time() + 3650 * 86400


def test_an_allowed_target_override_to_a_dead_port_fails_the_probe(exporter):
    with dead_port() as port:
        status, _, body = exporter.get(f"/probe?plan=smoke&target=127.0.0.1:{port}")
    got = samples(body)
    assert status == 200
    assert got[("smtprun_probe_success", ())] == 0
    assert got[("smtprun_case_success", (("case", "smoke"),))] == 0
    assert ("smtprun_step_reply_code", (("action", "expect"), ("case", "smoke"), ("step", "1"))) not in got


@pytest.mark.parametrize(("query", "reason"), [
    ("plan=../x", "plan '../x' is not a plan name: the name of a .yaml file in the plans folder"),
    ("plan=/etc/passwd", "plan '/etc/passwd' is not a plan name: the name of a .yaml file in the plans folder"),
    ("plan=nope", "unknown plan 'nope'"),
    ("", "plan parameter is missing: /probe?plan=NAME"),
    ("plan=smoke&target=192.0.2.1:25", "target 192.0.2.1:25 is not allowed by --allow-target"),
    ("plan=smoke&target=mx:example.org", "target mx:example.org:25 is not allowed by --allow-target"),
    ("plan=smoke&target=a:b:c", "target 'a:b:c': not a host, HOST:PORT or IPv6 address: 'a:b:c'"),
    ("plan=smoke&x=" + "a" * 2000, "query longer than 1024 bytes"),
])
def test_bad_probe_requests_get_400_with_a_one_line_reason(exporter, query, reason):
    assert exporter.get(f"/probe?{query}") == (400, "text/plain; charset=utf-8", reason + "\n")


def test_a_plan_that_does_not_validate_is_reported_at_start_and_refused(exporter, plans):
    assert f"smtprun exporter: {plans / 'broken.yaml'}:3:11: error: undefined variable 'nope'" in exporter.startup
    assert "smtprun exporter: 1 plan in" in exporter.startup and "not valid: broken" in exporter.startup
    status, _, body = exporter.get("/probe?plan=broken")
    assert (status, body) == (400, f"plan 'broken' does not validate: {plans / 'broken.yaml'}:3:11: error: "
                                   "undefined variable 'nope'\n")


def test_an_edited_plan_is_read_again_and_validated_again(exporter, plans):
    assert exporter.get("/probe?plan=smoke")[0] == 200
    (plans / "smoke.yaml").write_text(SMOKE.replace("EHLO smtprun.test", "EHLO {{ helo }}"))
    status, _, body = exporter.get("/probe?plan=smoke")
    assert (status, body) == (400, f"plan 'smoke' does not validate: {plans / 'smoke.yaml'}:5:11: error: "
                                   "undefined variable 'helo'\n")
    (plans / "broken.yaml").write_text(SMOKE)
    status, _, body = exporter.get("/probe?plan=broken")
    assert status == 200 and samples(body)[("smtprun_probe_success", ())] == 1


def test_target_is_refused_without_allow_target(plans):
    with running_exporter(plans) as running:
        assert running.get("/probe?plan=smoke&target=127.0.0.1:25") == (
            400, "text/plain; charset=utf-8",
            "target= is not allowed: the exporter was started without --allow-target\n")


def test_the_scrape_timeout_header_bounds_the_probe(tmp_path):
    folder = tmp_path / "plans"
    folder.mkdir()
    with FaultServer("silent") as server:
        (folder / "hung.yaml").write_text(plan("hung", server.port))
        with running_exporter(folder) as running:
            t0 = time.monotonic()
            status, _, body = running.get("/probe?plan=hung", {"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
            elapsed = time.monotonic() - t0
    got = samples(body)
    assert status == 200 and got[("smtprun_probe_success", ())] == 0
    assert elapsed < 1.5
    assert 1.0 <= got[("smtprun_probe_duration_seconds", ())] < 1.5
    assert got[("smtprun_probe_failure_info", (("case", "hung"), ("reason", "timeout"), ("step", "1")))] == 1


def held_sessions(hold: float):
    """A server that waits `hold` seconds before its banner, counting the connections open at once."""
    count = Concurrency()

    def behaviour(peer: Peer) -> None:
        count.enter(peer.sock)
        try:
            ready, _, _ = select.select([peer.sock], [], [], hold)
            if ready:  # the client sends nothing before the banner: it hung up (its probe's time ran out)
                return
            peer.send(BANNER)
            peer.read_line()
            peer.send(b"221 bye\r\n")
        finally:
            count.leave(peer.sock)
    return behaviour, count


def test_at_most_max_concurrent_probes_run_the_rest_wait_or_get_503(tmp_path):
    folder = tmp_path / "plans"
    folder.mkdir()
    behaviour, peak = held_sessions(0.4)
    with FaultServer(behaviour) as server:
        (folder / "held.yaml").write_text(plan("held", server.port))
        with running_exporter(folder, "--max-concurrent", "2") as running, ThreadPoolExecutor(40) as pool:
            answers = list(pool.map(lambda _: running.get("/probe?plan=held", {
                "X-Prometheus-Scrape-Timeout-Seconds": "1.5"}), range(40)))
            own = running.get("/metrics")[2]
    assert peak.peak == 2
    ok = [a for a in answers if a[0] == 200]
    refused = [a for a in answers if a[0] == 503]
    assert len(ok) + len(refused) == 40 and len(ok) >= 2 and refused
    assert {a[2] for a in refused} <= {"no probe slot free within 1.25s (--max-concurrent 2)\n",
                                       "too many probes waiting; try again later\n"}
    got = samples(own)
    assert got[("smtprun_exporter_probes_in_flight", ())] == 0
    assert got[("smtprun_exporter_requests_refused_total", (("status", "503"),))] == len(refused)


def test_clients_that_never_finish_their_request_do_not_block_probes(exporter):
    host, port = exporter.url.removeprefix("http://").split(":")
    stalled = []
    try:
        for _ in range(200):
            sock = socket.create_connection((host, int(port)), timeout=5)
            sock.sendall(b"GET /probe?plan=smoke HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            stalled.append(sock)
        t0 = time.monotonic()
        status, _, body = exporter.get("/probe?plan=smoke", timeout=5)
        assert status == 200 and samples(body)[("smtprun_probe_success", ())] == 1
        assert time.monotonic() - t0 < 3
    finally:
        for sock in stalled:
            sock.close()


def test_index_lists_the_plans_and_metrics_counts_probes(exporter):
    exporter.get("/probe?plan=smoke")
    exporter.get("/probe?plan=nope")
    status, content_type, page = exporter.get("/")
    assert status == 200 and content_type.startswith("text/html")
    assert '<a href="probe?plan=smoke">smoke</a> <small>(ok)</small>' in page
    assert '<a href="probe?plan=broken">broken</a> <small>(does not validate: ' in page
    got = samples(exporter.get("/metrics")[2])
    assert got[("smtprun_exporter_probes_total", (("outcome", "success"), ("plan", "smoke")))] == 1
    assert got[("smtprun_exporter_requests_refused_total", (("status", "400"),))] == 1
    assert got[("smtprun_exporter_plan_valid", (("plan", "broken"),))] == 0
    assert got[("smtprun_exporter_plan_valid", (("plan", "smoke"),))] == 1
    assert ("process_resident_memory_bytes", ()) in got


def test_plan_valid_follows_the_folder_plans_added_fixed_and_removed(exporter, plans):
    def valid() -> dict[str, float]:
        got = samples(exporter.get("/metrics")[2])
        return {dict(labels)["plan"]: value for (name, labels), value in got.items()
                if name == "smtprun_exporter_plan_valid"}

    assert valid() == {"broken": 0, "smoke": 1}
    (plans / "broken.yaml").unlink()
    (plans / "new.yaml").write_text(SMOKE)
    assert valid() == {"new": 1, "smoke": 1}
    assert exporter.get("/probe?plan=broken")[:3:2] == (400, "unknown plan 'broken'\n")


def _reports(folder) -> list[str]:
    """smoke-<time>Z.html, smoke-<time>Z-1.html, ...: oldest first."""
    return sorted((p.name for p in folder.glob("smoke-*.html")),
                  key=lambda n: (n.split("Z")[0], int(n.split("Z")[1].strip("-.html") or 0)))


def _until(check, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "reports did not appear in time"
        time.sleep(0.1)
    return found


def test_with_report_dir_probes_write_reports_and_the_index_links_the_latest(plans, tmp_path):
    folder = tmp_path / "reports"
    with running_exporter(plans, "--report-dir", str(folder), "--keep-reports", "3") as exporter:
        assert "latest report" not in exporter.get("/")[2]
        with ThreadPoolExecutor(6) as pool:  # finishing together: their writes take turns
            answers = list(pool.map(lambda _: exporter.get("/probe?plan=smoke")[0], range(6)))
        assert answers == [200] * 6
        written = ("smtprun_exporter_reports_total", (("outcome", "written"), ("plan", "smoke")))
        _until(lambda: samples(exporter.get("/metrics")[2]).get(written) == 6)
        names = _reports(folder)
        assert len(names) == 3, names
        page = exporter.get("/")[2]
        latest = page.split('<a href="reports/')[1].split('"')[0]
        assert latest in names and f'<small>(ok)</small> · <a href="reports/{latest}">latest report</a>' in page
        assert "broken</a> <small>(does not validate:" in page and page.count("latest report") == 1

        status, content_type, report = exporter.get(f"/reports/{latest}")
        assert (status, content_type) == (200, "text/html; charset=utf-8")
        assert '<span class="verdict passed">passed</span>' in report and "<h1>smoke</h1>" in report
        index = exporter.get("/reports/index.html")[2]
        assert [n for n in names if f'">{n}</a>' in index] == names and index.count('">smoke-') == 3
        for bad in ("..%2Fplans%2Fsmoke.yaml", "nope.html", ".hidden.html", "smoke.yaml"):
            assert exporter.get(f"/reports/{bad}")[:1] == (404,), bad
    for name in names:
        text = (folder / name).read_text()
        assert text.rstrip().endswith("</html>"), f"{name} is whole"
    with running_exporter(plans, "--report-dir", str(folder)) as again:  # remembered across restarts
        assert f'<a href="reports/{names[-1]}">latest report</a>' in again.get("/")[2]


@pytest.mark.parametrize(("argv", "message"), [
    (("--var", "rctp=x"), "--var rctp: no variable 'rctp' in {tmp}/plans/smoke.yaml"),
    (("--var", "rcpt"), "argument --var: expected NAME=VALUE, got 'rcpt'"),
    (("--report-dir", "{tmp}/file/reports"), "--report-dir {tmp}/file/reports: cannot write there: Not a directory"),
    (("--report-dir", "{tmp}/file"), "--report-dir {tmp}/file: cannot write there: not a folder"),
    (("--allow-target", ""), "argument --allow-target: expected a host:port glob such as '127.0.0.1:*', got ''"),
])
def test_options_it_cannot_use_are_a_one_line_usage_error(plans, tmp_path, argv, message):
    (tmp_path / "file").write_text("")
    argv = [a.format(tmp=tmp_path) for a in argv]
    done = subprocess.run([sys.executable, "-m", "runner", "exporter", "--plans", str(plans), *argv],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.endswith(f"smtprun exporter: {message.format(tmp=tmp_path)}\n")


DELIVERY = send_plan("""\
  - expect_delivery:
      mailbox: imap://alice@127.0.0.1/INBOX
      password: "{{ env.SMTPRUN_TEST_IMAP_PASSWORD }}"
      cafile: /etc/smtprun-test/ca.pem
      within: 15
      delete: true
""")


def test_a_delivery_probe_reports_the_latency_and_the_wait(tmp_path, postfix, monkeypatch):
    require_dovecot(DOVECOT)
    folder = tmp_path / "plans"
    folder.mkdir()
    (folder / "delivery.yaml").write_text(DELIVERY)
    monkeypatch.setenv("SMTPRUN_TEST_IMAP_PASSWORD", DOVECOT.users["alice"])
    with running_exporter(folder) as exporter:
        status, _, body = exporter.get("/probe?plan=delivery")
    got = samples(body)
    labels = (("action", "expect_delivery"), ("case", "delivery"), ("step", "8"))
    assert status == 200 and got[("smtprun_probe_success", ())] == 1, body
    assert got[("smtprun_mailbox_found", labels)] == 1
    assert 0 <= got[("smtprun_delivery_latency_seconds", labels)] <= got[("smtprun_mailbox_wait_seconds", labels)] + 1
    assert got[("smtprun_mailbox_wait_seconds", labels)] < 15
    assert DOVECOT.users["alice"] not in body


NEEDS_VARS = """\
name: needs
vars: {cafile: "", rcpt: nobody@example.org}
target: {host: 127.0.0.1, port: 25, timeout: 5}
steps:
  - expect: 220
  - send: EHLO smtprun.test
    expect: 250
  - starttls: {cafile: "{{ cafile }}"}
  - send: EHLO smtprun.test
    expect: 250
  - send: "MAIL FROM:<monitor@smtprun.test>"
    expect: 250
  - send: "RCPT TO:<{{ rcpt }}>"
    expect: 250
  - send: QUIT
    expect: 221
"""


def test_var_gives_every_plan_its_variables_as_run_does(tmp_path, postfix):
    folder = tmp_path / "plans"
    folder.mkdir()
    (folder / "needs.yaml").write_text(NEEDS_VARS)
    with running_exporter(folder) as exporter:
        assert samples(exporter.get("/probe?plan=needs")[2])[("smtprun_probe_success", ())] == 0
    given = ("--var", f"cafile={postfix.ca_path}", "--var", "rcpt=alice@smtprun.test")
    with running_exporter(folder, *given) as exporter:
        status, _, body = exporter.get("/probe?plan=needs")
        assert status == 200 and samples(body)[("smtprun_probe_success", ())] == 1, body
        (folder / "later.yaml").write_text(NEEDS_VARS.replace("name: needs", "name: later"))
        assert samples(exporter.get("/probe?plan=later")[2])[("smtprun_probe_success", ())] == 1  # added since


def hang_up_after_banner(peer: Peer) -> None:
    peer.send(BANNER)
    peer.read_line()


STEPS = "name: {name}\ntarget: {{host: 127.0.0.1, port: {port}, timeout: {timeout}}}\nsteps:\n  - expect: 220\n"
EHLO = "  - send: EHLO smtprun.test\n    expect: 250\n"
TLS = EHLO + "  - starttls: {{cafile: {ca}}}\n" + EHLO


def failing_plans(ports: dict[str, int], maildir: Path) -> dict[str, tuple[str, int, str]]:
    """name -> (plan text, failing step, reason class) for every class a test server here can cause."""
    ca = EXIM.ca_path
    return {
        "refused": (STEPS.format(name="refused", port=ports["dead"], timeout=5), 0, "connect"),
        "no_mx": (f"name: no_mx\ntarget: {{mx: example.test, nameserver: '127.0.0.1:{ports['mute_dns']}', "
                  "dns_timeout: 1}\nsteps:\n  - expect: 220\n", 0, "dns"),
        "silent": (STEPS.format(name="silent", port=ports["silent"], timeout=1), 1, "timeout"),
        "hangs_up": (STEPS.format(name="hangs_up", port=ports["hangs_up"], timeout=5) + EHLO, 2, "closed"),
        "garbled": (STEPS.format(name="garbled", port=ports["garbled"], timeout=5), 1, "protocol"),
        "untrusted": (STEPS.format(name="untrusted", port=25, timeout=5) + EHLO + "  - starttls: {}\n", 3, "tls"),
        "relay": (STEPS.format(name="relay", port=25, timeout=5) + EHLO
                  + "  - send: 'MAIL FROM:<monitor@smtprun.test>'\n    expect: 250\n"
                  + "  - send: 'RCPT TO:<someone@example.org>'\n    expect: 250\n", 4, "reply_code"),
        "banner": (STEPS.format(name="banner", port=25, timeout=5).replace("expect: 220", "expect: {code: 220, "
                   "text: Exchange}"), 1, "reply_text"),
        "password": (STEPS.format(name="password", port=EXIM.port, timeout=5) + TLS.format(ca=ca)
                     + "  - auth: {mechanism: PLAIN, username: alice, password: wrong}\n", 5, "auth"),
        "lost": (STEPS.format(name="lost", port=25, timeout=5)
                 + f"  - expect_delivery: {{mailbox: 'maildir:{maildir}', within: 0.5}}\n", 2, "delivery"),
        "smuggled": (STEPS.format(name="smuggled", port=25, timeout=5) + EHLO  # Postfix 3.7 as Debian ships it
                     + "  - send: 'MAIL FROM:<bob@smtprun.test>'\n    expect: 250\n"
                     + "  - send: 'RCPT TO:<alice@smtprun.test>'\n    expect: 250\n"
                     + "  - send: DATA\n    expect: 354\n"
                     + "  - smuggle: {ending: \"\\n.\\n\", sender: bob@smtprun.test, rcpt: alice@smtprun.test}\n",
                     6, "smuggling"),
    }


def test_a_failed_probe_says_which_step_failed_and_why_in_bounded_labels(tmp_path, postfix):
    require_smtp(EXIM)
    folder, maildir = tmp_path / "plans", tmp_path / "Maildir"
    folder.mkdir()
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (folder / "smoke.yaml").write_text(SMOKE)
    with FaultServer("silent") as silent, FaultServer("nul") as garbled, FaultServer(hang_up_after_banner) as \
            hangs_up, dead_port() as dead, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute_dns:
        mute_dns.bind(("127.0.0.1", 0))  # a name server that never answers
        ports = {"silent": silent.port, "garbled": garbled.port, "hangs_up": hangs_up.port, "dead": dead,
                 "mute_dns": mute_dns.getsockname()[1]}
        expected = failing_plans(ports, maildir)
        for name, (text, _, _) in expected.items():
            (folder / f"{name}.yaml").write_text(text)
        with running_exporter(folder) as exporter:
            got = {name: samples(exporter.get(f"/probe?plan={name}")[2]) for name in [*expected, "smoke"]}
    for name, (_, step, reason) in expected.items():
        info = {labels: value for (metric, labels), value in got[name].items()
                if metric == "smtprun_probe_failure_info"}
        assert info == {(("case", name), ("reason", reason), ("step", str(step))): 1}, (name, got[name])
        assert got[name][("smtprun_probe_success", ())] == 0
    assert not [key for key in got["smoke"] if key[0] == "smtprun_probe_failure_info"]


def _openssl(*argv: str, data: bytes = b"") -> str:
    return subprocess.run(["openssl", *argv], input=data, capture_output=True, timeout=30, check=True).stdout.decode()


def test_the_tls_version_and_the_chain_as_blackbox_exporter_reports_them(exporter):
    """smtprun_tls_version_info, smtprun_ssl_last_chain_info and the expiry of each certificate sent, compared with
    what `openssl s_client -starttls smtp` receives from Postfix and `openssl x509` reads in it."""
    sent = _openssl("s_client", "-starttls", "smtp", "-connect", "127.0.0.1:25", "-showcerts", data=b"QUIT\n")
    pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", sent, re.DOTALL)
    leaf = pems[0].encode()
    fingerprint = _openssl("x509", "-noout", "-fingerprint", "-sha256", data=leaf).split("=", 1)[1].strip()
    serial = _openssl("x509", "-noout", "-serial", data=leaf).split("=", 1)[1].strip()
    end = _openssl("x509", "-noout", "-enddate", data=leaf).split("=", 1)[1].strip()
    got = samples(exporter.get("/probe?plan=smoke")[2])
    assert got[("smtprun_tls_version_info", (("case", "smoke"), ("version", "TLS 1.3")))] == 1
    info = [labels for name, labels in got if name == "smtprun_ssl_last_chain_info"]
    assert [dict(labels) for labels in info] == [{
        "case": "smoke", "fingerprint_sha256": fingerprint.replace(":", "").lower(),
        "subject": "CN=mail.smtprun.test", "issuer": "CN=smtprun test CA",
        "subjectalternative": "mail.smtprun.test,localhost,127.0.0.1", "serialnumber": serial.lower()}]
    expiry = ssl.cert_time_to_seconds(end)
    elements = {dict(labels)["element"]: value for (name, labels), value in got.items()
                if name == "smtprun_ssl_chain_cert_expiry"}
    assert sorted(elements) == [str(n) for n in range(1, len(pems) + 1)] and elements["1"] == expiry
    assert got[("smtprun_ssl_earliest_cert_expiry", ())] == min(elements.values())


def test_every_certificate_sent_has_its_expiry_and_the_earliest_is_the_chains(tmp_path):
    """A server that sends its certificate and an intermediate expiring first: one series per element, and
    smtprun_ssl_earliest_cert_expiry is the intermediate's, as blackbox_exporter's is over the chain."""
    pem, ca, ders = chain_server(tmp_path, datetime(3000, 6, 1, tzinfo=timezone.utc))
    certificates = [x509.load_der_x509_certificate(der) for der in ders]
    folder = tmp_path / "plans"
    folder.mkdir()
    with EmbeddedServer(tls=ServerTls(server_tls_context(str(pem)))) as server:
        (folder / "chain.yaml").write_text(f"name: chain\ntarget: {{host: 127.0.0.1, port: {server.port}, "
                                           "timeout: 5}\nsteps:\n  - expect: 220\n  - send: EHLO smtprun.test\n"
                                           f"    expect: 250\n  - starttls: {{cafile: \"{ca}\"}}\n")
        with running_exporter(folder) as running:
            got = samples(running.get("/probe?plan=chain")[2])
    assert got[("smtprun_probe_success", ())] == 1
    for element, cert in enumerate(certificates, 1):
        labels = (("case", "chain"), ("element", str(element)), ("issuer", cert.issuer.rfc4514_string()),
                  ("subject", cert.subject.rfc4514_string()))
        assert got[("smtprun_ssl_chain_cert_expiry", labels)] == cert.not_valid_after_utc.timestamp()
    assert got[("smtprun_ssl_earliest_cert_expiry", ())] == certificates[1].not_valid_after_utc.timestamp()
