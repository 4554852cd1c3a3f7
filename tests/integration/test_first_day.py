"""What a mail administrator's first day with smtprun turns up, each against a real server or the fault server.

Exim 4.96 on 127.0.0.1:2525 (tests/support/mtas.py) for what real servers do; tests/support/faults.py for what
only a misbehaving one would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from runner.report.format import format_seconds
from tests.support.cli import ROOT, run, write_plan
from tests.support.dnsserver import DnsServer
from tests.support.faults import BANNER, REPLIES, UNKNOWN, FaultServer, Peer, converse
from tests.support.mtas import EXIM, require_smtp

pytestmark = pytest.mark.timeout(60)


def exim_plan(tmp_path, steps: str, finally_steps: str = "", head: str = "") -> str:
    """A one-case plan against Exim; `steps` and `finally_steps` are YAML lists indented by two spaces."""
    server = require_smtp(EXIM)
    text = f"name: exim\ntarget: {{host: {server.host}, port: {server.port}, timeout: 10{head}}}\nsteps:\n{steps}"
    if finally_steps:
        text += f"finally:\n{finally_steps}"
    return write_plan(tmp_path, text)


def test_finally_quit_after_a_quit_is_not_run_and_the_case_passes(tmp_path):
    plan = exim_plan(tmp_path, "  - expect: 220\n  - send: QUIT\n    expect: 221\n",
                     "  - send: QUIT\n    expect: 221\n")
    code, out, _ = run(plan, "--no-report", "--json", str(tmp_path / "r.json"))
    assert code == 0, out
    steps = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"][0]["steps"]
    assert [(s["status"], s["reason"]) for s in steps] == [
        ("passed", None), ("passed", None), ("skipped", "not run: the server ended the session (221)")]


def helo() -> str:
    return f"t{uuid.uuid4().hex[:12]}.smtprun.test"


def test_output_closed_by_its_reader_ends_the_run_quietly_with_141(tmp_path):
    """`smtprun -v | head -3`: the reader leaves; smtprun stops as a Unix tool does, with no message."""
    cases = "".join(f"  - name: c{n}\n    steps:\n      - expect: 220\n      - send: EHLO c{n}.smtprun.test\n"
                    "        expect: 250\n      - send: QUIT\n        expect: 221\n" for n in range(4))
    server = require_smtp(EXIM)
    plan = write_plan(tmp_path, f"name: many\ntarget: {{host: {server.host}, port: {server.port}}}\n"
                                f"sequential: true\ncases:\n{cases}")
    proc = subprocess.Popen([sys.executable, "-m", "runner", plan, "-v", "--no-report"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    assert proc.stdout is not None and proc.stderr is not None
    head = [proc.stdout.readline() for _ in range(3)]
    proc.stdout.close()  # as head -3 does
    started = time.monotonic()
    err = proc.stderr.read()
    assert proc.wait(20) == 141
    assert err == b"", err.decode()
    assert head[0].startswith(b"  * connecting to")
    assert time.monotonic() - started < 2  # stopped, not run to the end of four Exim sessions


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_verbose_keeps_sessions_concurrent_and_labels_their_lines(tmp_path):
    cases = "".join(f"  - name: c{n}\n    steps:\n      - expect: 220\n" for n in range(5))
    with FaultServer("silent") as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: 1.5}}\ncases:\n{cases}")
        started = time.monotonic()
        code, out, _ = run(plan, "-v", "--no-report")
        took = time.monotonic() - started
    assert code == 1
    assert took < 4, f"five silent sessions took {took:.1f}s: one at a time, not together"
    for n in range(5):
        assert f"[c{n}] * connected to 127.0.0.1:{server.port}" in out


def test_got_shows_each_reply_line_as_it_came_and_why_does_not_repeat_it(tmp_path):
    plan = exim_plan(tmp_path, "  - expect: 220\n  - send: EHLO client.smtprun.test\n    expect: 250\n"
                               "  - send: 'MAIL FROM:<bob@smtprun.test>'\n    expect: 250\n"
                               "  - send: 'RCPT TO:<alice@smtprun.test>'\n    expect: 250\n"
                               "  - bdat: {data: \"Subject: x\\n\\nhello\\n\", chunk_size: 8}\n"
                               "    expect: {code: 250, text: 'queued as'}\n")
    code, out, _ = run(plan, "--no-report")
    assert code == 1
    got = out.split("got:", 1)[1].splitlines()
    assert got[0].strip() == "250- 5 byte chunk, total 21"  # Exim's own spacing, hyphen kept
    assert got[1].strip().startswith("250 OK id=")
    assert "why:      chunk 3 of 3: expected text matching /queued as/, got 250\n" in out


def test_a_multiline_reply_keeps_its_hyphens(tmp_path):
    plan = exim_plan(tmp_path, "  - expect: 220\n  - send: EHLO client.smtprun.test\n    expect: 251\n")
    code, out, _ = run(plan, "--no-report")
    assert code == 1
    assert "\n                  250-PIPELINING\n" in out and "\n                  250 HELP\n" in out
    assert "why:      expected 251, got 250\n" in out


def test_a_timeout_says_how_long_it_waited(tmp_path, silent):
    plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {silent.port}, timeout: 0.5}}\nsteps:\n"
                                "  - expect: 220\n")
    code, out, _ = run(plan, "--no-report")
    assert code == 1
    assert "why:      no reply within 0.5s\n" in out


def test_a_failed_connection_is_not_reported_as_step_1(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {port}, timeout: 2}}\nsteps:\n  - expect: 220\n")
    code, out, _ = run(plan, "--no-report", "--json", str(tmp_path / "r.json"))
    assert code == 1
    assert f"        cannot connect to 127.0.0.1:{port}: Connection refused\n" in out
    assert "step 1" not in out
    case = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"][0]
    assert case["reason"] == f"cannot connect to 127.0.0.1:{port}: Connection refused"
    assert [(s["status"], s["reason"]) for s in case["steps"]] == [("skipped", None)]


def latin1_banner(peer: Peer) -> None:
    peer.send(b"220 serveur de messagerie pr\xeat\r\n")
    converse(peer)


LATIN1_STEPS = "steps:\n  - expect: {code: 220, text: 'prêt'}\n  - send: EHLO client.test\n    expect: 250\n" \
               "  - send: QUIT\n    expect: 221\n"


def test_a_latin1_banner_is_accepted_with_a_warning(tmp_path):
    with FaultServer(latin1_banner) as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}}}\n{LATIN1_STEPS}")
        code, out, _ = run(plan, "-v", "--no-report", "--json", str(tmp_path / "r.json"))
    assert code == 0, out
    assert "  S: 220 serveur de messagerie pr\\xeat\n" in out  # the byte as it came, escaped
    warning = "warning: reply text is not UTF-8 (RFC 5321 §4.2 allows ASCII, RFC 6531 UTF-8): read as Latin-1"
    assert f"  * {warning}" in out
    case = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"][0]
    assert [n for n in case["notes"] if n.startswith(warning)] and len(case["notes"]) == 1
    assert case["steps"][0]["reply"]["lines"] == ["serveur de messagerie prêt"]


def test_strict_replies_refuses_a_latin1_banner(tmp_path):
    with FaultServer(latin1_banner) as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, strict_replies: true}}\n"
                                    f"{LATIN1_STEPS}")
        code, out, _ = run(plan, "--no-report")
    assert code == 1
    assert "why:      protocol error: reply line is not valid UTF-8 at byte 28\n" in out


def test_control_bytes_stay_refused_in_8bit_text(tmp_path):
    def latin1_escape(peer: Peer) -> None:
        peer.send(b"220 pr\xeat \x1b[2J\r\n")
        peer.hold()

    with FaultServer(latin1_escape) as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}}}\n{LATIN1_STEPS}")
        code, out, _ = run(plan, "--no-report")
    assert code == 1
    assert "why:      protocol error: reply line contains control character 0x1b at offset 9\n" in out


def tls_refuser(alert: bool):
    """Answers STARTTLS with 220, reads the ClientHello, then sends a fatal handshake_failure alert or just closes."""
    def behaviour(peer: Peer) -> None:
        peer.send(BANNER)
        for verb, _line in peer.commands():
            if verb == "STARTTLS":
                peer.send(b"220 2.0.0 Ready to start TLS\r\n")
                peer.sock.recv(64 * 1024)
                if alert:  # RFC 8446 §6: content type 21, TLS 1.2 record version, level 2 (fatal), 40
                    peer.send(b"\x15\x03\x03\x00\x02\x02\x28")
                peer.finish()
                return
            peer.send(REPLIES.get(verb, UNKNOWN))
    return behaviour


@pytest.mark.parametrize(("alert", "why"), [
    (True, "TLS handshake failed: the server sent the TLS alert 'handshake failure' (SSLV3_ALERT_HANDSHAKE_FAILURE)"),
    (False, "TLS handshake failed: the server closed the connection during the TLS handshake, without a TLS alert"),
], ids=["alert", "close"])
def test_a_failed_starttls_handshake_says_why_and_is_in_the_transcript(tmp_path, alert, why):
    with FaultServer(tls_refuser(alert)) as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: 3}}\nsteps:\n"
                                    "  - expect: 220\n  - send: EHLO client.test\n    expect: 250\n"
                                    "  - starttls: {verify: false}\n")
        code, out, _ = run(plan, "--no-report", "--json", str(tmp_path / "r.json"))
    assert code == 1
    assert f"why:      {why}\n" in out
    events = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"][0]["transcript"]
    assert [(e["dir"], e["data"]) for e in events[-2:]] == [("*", why), ("*", "client dropped the connection")]


def test_implicit_tls_against_a_plaintext_port_says_so(tmp_path):
    plan = exim_plan(tmp_path, "  - expect: 220\n", head=", tls: implicit, verify: false")
    code, out, _ = run(plan, "--no-report")
    assert code == 1
    assert (f"{EXIM.host}:{EXIM.port}: TLS handshake failed: the server answered in plaintext, not TLS "
            "(WRONG_VERSION_NUMBER); is this a STARTTLS port? use a starttls: step instead of tls: implicit") in out


def exim_log_for(name: str, present: str, timeout: float = 5.0) -> list[str]:
    """Exim's mainlog lines naming the EHLO name `name`, once a line containing `present` is among them
    (and half a second more, for what Exim logs when the session ends)."""
    log = EXIM.logs[-1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in log.read_text(errors="replace").splitlines() if f"({name})" in line]
        if any(present in line for line in lines):
            time.sleep(0.5)
            return [line for line in log.read_text(errors="replace").splitlines() if f"({name})" in line]
        time.sleep(0.1)
    pytest.fail(f"no line with {present!r} for {name} in {log}")


def relay_attempt(tmp_path, name: str, head: str = "") -> str:
    return exim_plan(tmp_path, f"  - expect: 220\n  - send: EHLO {name}\n    expect: 250\n"
                               "  - send: 'MAIL FROM:<bob@smtprun.test>'\n    expect: 250\n"
                               "  - send: 'RCPT TO:<someone@elsewhere.example>'\n    expect: 250\n", head=head)


def test_a_failed_case_says_quit_so_exim_logs_no_unexpected_disconnection(tmp_path):
    name = helo()
    code, out, _ = run(relay_attempt(tmp_path, name), "-v", "--no-report")
    assert code == 1
    assert "  * the case failed: ending the session with QUIT\n  C: QUIT\n  S: 221 " in out
    lines = exim_log_for(name, "rejected RCPT <someone@elsewhere.example>: relay not permitted")
    assert not [line for line in lines if "unexpected disconnection" in line], lines


def test_quit_on_failure_false_drops_the_connection_as_before(tmp_path):
    name = helo()
    code, out, _ = run(relay_attempt(tmp_path, name, head=", quit_on_failure: false"), "-v", "--no-report")
    assert code == 1
    assert "C: QUIT" not in out
    lines = exim_log_for(name, "unexpected disconnection")
    assert [line for line in lines if "rejected RCPT" in line]


def test_verbose_shows_checks_captures_errors_and_verdicts_in_order(tmp_path):
    server = require_smtp(EXIM)
    plan = write_plan(tmp_path, f"""\
target: {{host: {server.host}, port: {server.port}, timeout: 10}}
vars: {{word: ""}}   # given with --secret: every text holding it is masked
cases:
  - name: relay
    retry: {{times: 1}}
    steps:
      - expect: 220
        capture: {{banner_host: '^(\\S+)'}}
      - send: EHLO client.smtprun.test
        expect: 250
      - starttls: {{cafile: {server.ca_path}, server_name: {server.hostname}}}
      - expect_tls: {{min_version: TLSv1.2, name: {server.hostname}}}
      - send: EHLO client.smtprun.test
        expect: 250
      - send: "MAIL FROM:<bob@smtprun.test>"
        expect: 250
      - send: "RCPT TO:<someone@elsewhere.example>"
        expect: 250
  - name: banner
    steps:
      - expect: 220
""")
    code, out, _ = run(plan, "-v", "-j", "1", "--no-report", "--secret", "word=smtprun")
    assert code == 1
    lines = out.splitlines()
    assert "  * captured banner_host = 'mail.***.test'" in lines  # a secret stays one in a capture
    assert next(line for line in lines if line.startswith("  * TLS established: TLSv1.3 ")).endswith(", verified")
    assert "  * expect_tls: version TLSv1.3: ok; name mail.***.test: ok" in lines
    assert "  S! 550 relay not permitted" in lines
    assert lines.count("  * client closed the connection") == 3
    # each session's verdict (a try's, then the case's) comes before the next session's first line
    starts = [n for n, line in enumerate(lines) if line.startswith("  * connecting to")]
    verdict = ("  * try 1 of 2 failed: step 7", "FAIL  ", "PASS  ")
    verdicts = [n for n, line in enumerate(lines) if line.startswith(verdict)]
    assert len(starts) == 3 and len(verdicts) == 3
    assert starts[0] < verdicts[0] < starts[1] < verdicts[1] < starts[2] < verdicts[2]


def test_verbose_shows_the_dns_checks(tmp_path):
    with DnsServer({"smtprun.test.": {"TXT": ['"v=spf1 -all"']}}) as dns, FaultServer("normal") as server:
        (host, port), = dns.nameservers
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, nameserver: '{host}:{port}'}}\n"
                                    "steps:\n  - expect: 220\n  - expect_dns: {spf: present, dmarc: present, "
                                    "domain: smtprun.test}\n")
        code, out, _ = run(plan, "-v", "--no-report")
    assert code == 1
    assert "  * expect_dns: spf of smtprun.test: ok; dmarc of smtprun.test: no DMARC record: NXDOMAIN" in out


def test_every_report_gives_a_plan_the_same_wall_time_duration(tmp_path):
    """Three plans of two concurrent Exim sessions each (a QUIT takes Exim 0.2 s): a plan took its wall time,
    not the sum of its cases, and no plan took longer than the run."""
    server = require_smtp(EXIM)
    case = "steps: [{expect: 220}, {send: QUIT, expect: 221}]"
    plans = [write_plan(tmp_path, f"name: p{n}\ntarget: {{host: {server.host}, port: {server.port}}}\n"
                                  f"cases:\n  - name: a\n    {case}\n  - name: b\n    {case}\n", f"p{n}.yaml")
             for n in range(3)]
    code, out, _ = run(*plans, "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "j.xml"),
                       "--report-dir", str(tmp_path / "reports"))
    assert code == 0, out
    data = json.loads((tmp_path / "r.json").read_text())
    suites = ET.parse(tmp_path / "j.xml").getroot()
    index = (tmp_path / "reports" / "index.html").read_text()
    for plan, suite in zip(data["plans"], suites.findall("testsuite"), strict=True):
        cases = [c["duration"] for c in plan["cases"]]
        assert max(cases) <= plan["duration"] < sum(cases) <= 2 * plan["duration"] + 0.05
        assert plan["duration"] <= data["duration"]
        assert suite.get("time") == f"{plan['duration']:.3f}"
        [page] = (tmp_path / "reports").glob(f"{plan['name']}-*.html")
        shown = format_seconds(plan["duration"])
        assert f"<dt>Duration</dt><dd>{shown} " in page.read_text()
        assert re.search(rf"<strong>{plan['name']}</strong>.*?<td class=\"when\">{re.escape(shown)}</td>", index, re.S)
    assert float(suites.get("time")) >= max(float(s.get("time")) for s in suites.findall("testsuite"))


def test_ctrl_c_leaves_the_cases_that_never_started_not_run(tmp_path):
    cases = "".join(f"  - name: c{n}\n    steps:\n      - expect: 220\n" for n in range(4))
    with FaultServer("silent") as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: 60}}\ncases:\n{cases}")
        proc = subprocess.Popen([sys.executable, "-m", "runner", plan, "-v", "-j", "1", "--no-report",
                                 "--json", str(tmp_path / "r.json")], cwd=ROOT, env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            started = time.monotonic()
            while server.accepted == 0 and time.monotonic() - started < 20:
                time.sleep(0.05)
            time.sleep(0.5)  # the first session waits for its banner; the other three wait for their turn
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=5)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out + err
    assert "0 passed, 1 failed, 3 skipped in " in out and out.rstrip().endswith("(interrupted)")
    cases = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"]
    assert [(c["status"], c["reason"]) for c in cases] == [("failed", "interrupted")] + \
        [("skipped", "interrupted before it started")] * 3
