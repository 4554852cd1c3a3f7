"""smtprun against hostile servers: it never hangs, never crashes, and keeps its memory bounded.

Each test points the real command line at a tests/support/faults.py server that misbehaves in one way and
checks what a user would see: exit status 1, the case failed with a reason naming what went wrong,
reports still written, and all of it within the reply timeout plus a second.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import ROOT, run, write_plan
from tests.support.faults import FaultServer

TIMEOUT = 2  # seconds per reply in every plan here
SLACK = 1  # what a run may take beyond the timeout that ended it: start-up, reports
MB = 1024 * 1024

GREETING = """\
  - expect: 220
  - send: EHLO client.test
    expect: 250
"""
STARTTLS = "  - starttls: {verify: false}\n"
MESSAGE = """\
  - send: "MAIL FROM:<sender@client.test>"
    expect: 250
  - send: "RCPT TO:<rcpt@faults.test>"
    expect: 250
  - send: DATA
    expect: 354
"""
BODY = '  - data: "Subject: hostile\\n\\nhello\\n"\n    expect: 250\n'
BIG_BODY = "  - data_size: 20MB\n    expect: 250\n"
QUIT = "  - send: QUIT\n    expect: 221\n"


def plan_text(port: int, steps: str, timeout: float = TIMEOUT) -> str:
    return f"target: {{host: 127.0.0.1, port: {port}, timeout: {timeout}}}\nsteps:\n{steps}"


def many_cases_plan(port: int, n: int, steps: str, timeout: float = TIMEOUT) -> str:
    """A plan of n cases named "session 0" ... with the same (already indented) steps."""
    return (f"target: {{host: 127.0.0.1, port: {port}, timeout: {timeout}}}\ncases:\n"
            + "".join(f"  - name: session {i}\n    steps:\n{steps}" for i in range(n)))


@dataclass(frozen=True)
class Fault:
    behaviour: str
    reason: str  # a regex the failing step's "why:" must match
    steps: str = GREETING + QUIT
    options: dict[str, Any] = field(default_factory=dict)
    waits: bool = False  # the failure is a timeout, so it comes after TIMEOUT seconds, not at once


FAULTS = {
    "silent": Fault("silent", r"no reply within \d+(\.\d+)?s", waits=True),
    "drip": Fault("drip", r"timed out mid-reply after \d bytes", waits=True),
    "long_line": Fault("long_line", r"reply line longer than 4096 bytes"),
    "long_line_endless": Fault("long_line", r"reply line longer than 4096 bytes", options={"endless": True}),
    "endless_multiline": Fault("endless_multiline", r"multiline reply longer than 256 lines"),
    "junk_stream": Fault("junk_stream", r"protocol error: "),
    "close_mid_reply": Fault("close_mid_reply", r"connection closed mid-reply after 13 bytes"),
    "reset": Fault("reset", r"closed|reset", options={"on_command": 1}),  # at accept: see the reset tests below
    "nul": Fault("nul", r"NUL byte"),
    "bare_lf": Fault("bare_lf", r"bare LF"),
    "bare_cr": Fault("bare_cr", r"bare CR"),
    "code_change": Fault("code_change", r"code changed from 250 to 251"),
    "stall_tls": Fault("stall_tls", r"TLS handshake timed out", steps=GREETING + STARTTLS + QUIT, waits=True),
    "deaf": Fault("deaf", r"timed out sending: the server is not reading", steps=GREETING + MESSAGE + BIG_BODY,
                  waits=True),
    "random_drop": Fault("random_drop", r"closed|lost|reset", steps=GREETING + MESSAGE + BODY + QUIT,
                         options={"p": 1.0, "seed": 7}),
}


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    elapsed: float
    json: dict[str, Any]

    @property
    def case(self) -> dict[str, Any]:
        return self.json["plans"][0]["cases"][0]

    @property
    def why(self) -> str:
        """The failing step's reason as the JSON report gives it (the case's reason also names the file)."""
        return next(s["reason"] for s in self.case["steps"] if s["status"] == "failed")


@pytest.fixture(scope="module", autouse=True)
def warm(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One full run before any timed one: imports and template compiling are paid once per process, not
    by whichever timed test a worker happens to run first (on a busy machine that alone can exceed SLACK)."""
    with FaultServer("normal") as server:
        run_against(server, tmp_path_factory.mktemp("warm"), GREETING + MESSAGE + BODY + QUIT)


def run_against(server: FaultServer, tmp_path: Path, steps: str, *args: str) -> Outcome:
    """The plan through the command line in-process, with every report written, timed."""
    plan = write_plan(tmp_path, plan_text(server.port, steps), f"{server.name}.yaml")
    results = tmp_path / "results.json"
    t0 = time.monotonic()
    code, out, err = run(plan, "--report-dir", str(tmp_path / "reports"), "--json", str(results),
                         "--junit", str(tmp_path / "junit.xml"), *args)
    elapsed = time.monotonic() - t0
    assert "Traceback" not in out + err and "internal error" not in out + err, out + err
    return Outcome(code, out, err, elapsed, json.loads(results.read_text()))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])  # a small run's loop, and a large one's (runner/run/loop.py)
@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_hostile_server_fails_the_case_promptly_with_a_named_reason(tmp_path, fault, loop, monkeypatch):
    monkeypatch.setenv("SMTPRUN_EVENT_LOOP", loop)
    with FaultServer(fault.behaviour, **fault.options) as server:
        result = run_against(server, tmp_path, fault.steps)
    assert result.code == 1, result.out + result.err
    assert re.search(rf"^FAIL .*· {fault.behaviour} ", result.out, re.M), result.out
    assert re.search(rf"^\s+why:\s+.*(?:{fault.reason})", result.out, re.M), result.out
    assert "0 passed, 1 failed" in result.out
    assert result.case["status"] == "failed" and re.search(fault.reason, result.why)
    assert result.elapsed < TIMEOUT + SLACK, f"took {result.elapsed:.2f}s"
    if fault.waits:
        assert result.elapsed > TIMEOUT - 0.1, f"failed after {result.elapsed:.2f}s, before the timeout"
    assert list((tmp_path / "reports").glob(f"{fault.behaviour}-*.html"))
    ET.parse(tmp_path / "junit.xml")  # hostile bytes still make well-formed XML


def test_normal_server_passes(tmp_path):
    with FaultServer("normal") as server:
        result = run_against(server, tmp_path, GREETING + MESSAGE + BODY + QUIT)
    assert result.code == 0, result.out + result.err
    assert "1 passed" in result.out
    assert result.elapsed < SLACK


def test_drip_fed_banner_fails_at_the_reply_deadline_not_per_byte(tmp_path):
    """One byte a second is progress on every read, yet the reply as a whole has TIMEOUT seconds."""
    with FaultServer("drip") as server:
        result = run_against(server, tmp_path, "  - expect: 220\n")
    assert result.code == 1
    assert "timed out mid-reply after 2 bytes" in result.out or "timed out mid-reply after 3 bytes" in result.out
    assert TIMEOUT - 0.1 < result.elapsed < TIMEOUT + SLACK


def test_unsolicited_reply_fails_the_case(tmp_path):
    """Two replies to EHLO: the second must not pass for the reply to NOOP (RFC 5321 §4.2: one reply each)."""
    with FaultServer("unsolicited") as server:
        result = run_against(server, tmp_path, GREETING + "  - send: NOOP\n    expect: 250\n")
    assert result.code == 1, result.out
    assert re.search(r"unsolicited|not asked for|before .* was sent|extra reply", result.out), result.out


def test_reset_is_reported_as_a_reset(tmp_path):
    with FaultServer("reset") as server:
        plan = write_plan(tmp_path, many_cases_plan(server.port, 20, "      - expect: 220\n"))
        results = tmp_path / "results.json"
        code, _, _ = run(plan, "--jobs", "1", "--json", str(results), "--no-report")
    assert code == 1
    reasons = [c["reason"] for c in json.loads(results.read_text())["plans"][0]["cases"]]  # at connect, or step 1
    assert len(reasons) == 20 and all("reset" in r for r in reasons), sorted(set(reasons))


RESETS = 300


def test_resets_right_after_connect_never_crash(tmp_path):
    """A reset can land in any gap of connection set-up; each must end as its own case's verdict."""
    with FaultServer("reset") as server:
        plan = write_plan(tmp_path, many_cases_plan(server.port, RESETS, "      - expect: 220\n"))
        for _ in range(5):  # the gap is narrow: a few hundred sessions, one at a time, find it
            results = tmp_path / "results.json"
            code, out, err = run(plan, "--jobs", "1", "--json", str(results), "--no-report")
            assert "internal error" not in out + err and "Traceback" not in err, err[-3000:]
            cases = json.loads(results.read_text())["plans"][0]["cases"]
            assert code == 1 and all(c["status"] == "failed" for c in cases)
            assert not [c["reason"] for c in cases if "interrupted" in c["reason"]]


def test_control_characters_in_a_reply_do_not_reach_the_terminal(tmp_path):
    with FaultServer("escape_codes") as server:
        result = run_against(server, tmp_path, "  - expect: 250\n")
    assert result.code == 1
    assert "control character 0x1b" in result.out  # RFC 5321 §4.2: a reply is tab and printable text
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", result.out), repr(result.out)


# --- deadlines for the whole session, Ctrl-C -------------------------------------------------------------------

SLOW_NOOPS = "  - expect: 220\n" + "  - send: NOOP\n    expect: 250\n" * 20


def test_session_deadline_ends_a_case_of_slow_replies(tmp_path):
    """Every reply comes 0.8 s late, inside the 1 s step timeout; the 3 s session deadline still ends it."""
    with FaultServer("slow", delay=0.8) as server:
        plan = write_plan(tmp_path, plan_text(server.port, SLOW_NOOPS, timeout=1))
        t0 = time.monotonic()
        code, out, err = run(plan, "--session-timeout", "3", "--no-report")
        elapsed = time.monotonic() - t0
    assert code == 1, out + err
    assert "session deadline of 3s reached" in out
    assert "0 passed, 1 failed" in out
    assert 2.9 < elapsed < 3 + SLACK


def test_session_deadline_names_the_step_it_interrupted(tmp_path):
    with FaultServer("slow", delay=0.8) as server:
        result = run_against(server, tmp_path, SLOW_NOOPS, "--timeout", "1", "--session-timeout", "3")
    steps = result.case["steps"]
    assert [s["status"] for s in steps[:4]] == ["passed"] * 4
    assert steps[4]["status"] == "failed" and "session deadline" in steps[4]["reason"]
    assert all(s["status"] == "skipped" for s in steps[5:])
    assert re.search(r"step 5 at .*:\d+: send NOOP", result.out), result.out


@pytest.mark.parametrize("retry", [False, True])
def test_ctrl_c_stops_the_run_reports_and_exits_130(tmp_path, retry):
    reports = tmp_path / "reports"
    with FaultServer("silent") as server:
        text = plan_text(server.port, GREETING, timeout=60)
        if retry:  # the interrupted try must not count as a failure to retry
            text = (f"target: {{host: 127.0.0.1, port: {server.port}, timeout: 60}}\n"
                    "cases:\n  - name: retried\n    retry: {times: 3}\n    steps:\n"
                    + textwrap.indent(GREETING, "    "))
        plan = write_plan(tmp_path, text)
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "runner", plan, "--report-dir", str(reports)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            while server.accepted == 0 and time.monotonic() - started < 20:
                time.sleep(0.05)  # the session is under way: Ctrl-C lands in the run, not during start-up
            time.sleep(max(0.0, 1 - (time.monotonic() - started)))
            proc.send_signal(signal.SIGINT)
            interrupted = time.monotonic()
            out, err = proc.communicate(timeout=3)
        finally:
            proc.kill()
            proc.wait()
    assert time.monotonic() - interrupted < 3
    assert proc.returncode == 130, out + err
    assert "interrupted" in out + err
    assert "Traceback" not in err
    assert list(reports.glob("*.html")), out + err
    if retry:  # the interrupted try is the verdict: no retry after Ctrl-C
        assert "why:      interrupted" in out and "tries" not in out


# --- many sessions -----------------------------------------------------------------------------------------------

SESSIONS = 2000


def test_two_thousand_sessions_against_a_dropping_server(tmp_path):
    """One session in ten is cut at a random byte; exactly those fail, the rest pass, nothing is lost."""
    with FaultServer("random_drop", p=0.1, seed=2024) as server:
        dialogue = textwrap.indent(GREETING + MESSAGE + BODY + QUIT, "    ")
        plan = write_plan(tmp_path, many_cases_plan(server.port, SESSIONS, dialogue, timeout=5))
        results = tmp_path / "results.json"
        t0 = time.monotonic()
        code, out, err = run(plan, "--jobs", "50", "--json", str(results), "--no-report")
        elapsed = time.monotonic() - t0
    assert "Traceback" not in out + err
    cases = json.loads(results.read_text())["plans"][0]["cases"]
    passed = [c for c in cases if c["status"] == "passed"]
    failed = [c for c in cases if c["status"] == "failed"]
    assert len(passed) + len(failed) == SESSIONS
    assert server.accepted == SESSIONS
    assert len(failed) == server.dropped, [c["reason"] for c in failed][:5]
    assert 0 < len(failed) < SESSIONS // 5
    reasons = {s["reason"] for c in failed for s in c["steps"] if s["status"] == "failed"}
    assert all(re.search(r"closed|lost|reset", r) for r in reasons), reasons
    assert code == 1
    assert f"{len(passed)} passed, {len(failed)} failed" in out
    assert elapsed < 60


# --- memory ------------------------------------------------------------------------------------------------------

@dataclass
class Child:
    code: int
    out: str
    elapsed: float
    max_rss: int  # bytes


def run_child(*argv: str, timeout: float = 30) -> Child:
    """`python -m runner ARGV` in a subprocess; its own peak RSS comes from wait4."""
    with tempfile.TemporaryFile() as out:
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "runner", *argv], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > timeout:
                proc.kill()
                os.wait4(proc.pid, 0)
                pytest.fail(f"smtprun {' '.join(argv)} still running after {timeout}s")
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return Child(proc.returncode, out.read().decode(), time.monotonic() - t0, usage.ru_maxrss * 1024)


# The client sleeps first, so the server fills every buffer on the way before anything is parsed.
STREAM_PLAN = "  - sleep: 1\n" + GREETING + QUIT


@pytest.mark.parametrize(("behaviour", "options", "reason"), [
    ("junk_stream", {}, "protocol error"),
    ("long_line", {"endless": True}, "longer than 4096 bytes"),
    ("endless_multiline", {}, "longer than 256 lines"),
])
def test_endless_stream_adds_little_memory(tmp_path, behaviour, options, reason):
    def peak(name: str, **kwargs: Any) -> tuple[Child, FaultServer]:
        with FaultServer(name, **kwargs) as server:
            plan = write_plan(tmp_path, plan_text(server.port, STREAM_PLAN), f"{name}.yaml")
            return run_child(plan, "--report-dir", str(tmp_path / "reports")), server

    baseline, _ = peak("normal")
    assert baseline.code == 0, baseline.out
    hostile, server = peak(behaviour, **options)
    assert hostile.code == 1, hostile.out
    assert reason in hostile.out
    assert hostile.elapsed < baseline.elapsed + TIMEOUT + SLACK  # the same start-up and sleep as the baseline
    assert hostile.max_rss - baseline.max_rss < 10 * MB, (baseline.max_rss // MB, hostile.max_rss // MB)
    if behaviour == "junk_stream":
        assert server.junk_sent and max(server.junk_sent) < 64 * MB  # the client hung up long before 1 GB


# --- regexes the server's text could make run forever ------------------------------------------------------------


def test_catastrophic_regex_is_stopped_with_a_named_reason(tmp_path, embedded):
    """(.+)+X backtracks exponentially over a banner without an X: the search is cut at its time bound."""
    plan = write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, port: {embedded.port}, timeout: 5}}
cases:
  - name: expect text
    steps:
      - expect: {{code: 220, text: "(.+)+X"}}
  - name: capture
    steps:
      - expect: 220
        capture: {{x: "(.+)+X"}}
""")
    t0 = time.monotonic()
    code, out, _ = run(plan, "--no-report", "--jobs", "1")
    assert code == 1
    assert out.count("ran longer than 1s on this reply") == 2
    assert time.monotonic() - t0 < 4


def test_a_refusal_in_the_middle_of_a_big_body_is_judged(tmp_path):
    with FaultServer("refuse_mid_body") as server:
        plan = write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, port: {server.port}, timeout: 5}}
steps:
  - expect: 220
  - send: "MAIL FROM:<a@example.com>"
    expect: 250
  - send: DATA
    expect: 354
  - data_size: 50MB
    expect: {{code: 552, enhanced: "5.3.4"}}
""")
        code, out, err = run(plan, "--no-report")
    assert code == 0, out + err
