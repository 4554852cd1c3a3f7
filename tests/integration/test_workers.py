"""--workers N (runner/run/workers.py): a repeated case's sessions shared among worker processes, against
Postfix's smtp-sink in a process of its own on a free loopback port, the figures merged into one summary."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import run, write_plan

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[int]:
    """smtp-sink on 127.0.0.1 and a free port: it takes any mail and keeps none; the port."""
    if not Path(SMTP_SINK).exists():
        pytest.skip("smtp-sink is not installed (it comes with Postfix: scripts/test-env.sh)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "sink.log").open("wb")
    proc = subprocess.Popen([SMTP_SINK, "-u", "nobody", f"127.0.0.1:{port}", "200"], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    assert conn.recv(100).startswith(b"220")
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"smtp-sink did not start: {(tmp_path / 'sink.log').read_text()}")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


TRANSACTION = """\
target: {{host: 127.0.0.1, port: {port}, timeout: 10}}
steps:
  - expect: 220
  - send: EHLO workers.test
    expect: 250
  - send: "MAIL FROM:<a@workers.test>"
    expect: 250
  - send: "RCPT TO:<b@workers.test>"
    expect: 250
  - send: RSET
    expect: 250
  - send: QUIT
    expect: 221
"""


def load_of(path: Path) -> dict:
    [plan] = json.loads(path.read_text())["plans"]
    [case] = plan["cases"]
    return case


def test_two_workers_run_exactly_the_sessions_asked_for(tmp_path, sink):
    plan = write_plan(tmp_path, TRANSACTION.format(port=sink))
    code, out, err = run(plan, "--repeat", "301", "--jobs", "6", "--workers", "2", "--json",
                         str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    assert "301 sessions in" in out and "0 failed" in out
    case = load_of(tmp_path / "r.json")
    load = case["load"]
    assert case["status"] == "passed" and case["name"].endswith("×301")
    assert load["sessions"] == load["passed"] == 301 and load["failed"] == 0 and load["failures"] == {}
    # every step of every session, from both processes, in the one set of figures
    assert [s["count"] for s in load["steps"]] == [301] * 6
    assert [s["label"] for s in load["steps"]][1:3] == ["EHLO workers.test", "MAIL FROM:<a@workers.test>"]
    assert all(s["p50"] <= s["p90"] <= s["p99"] <= s["max"] for s in load["steps"])


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def test_a_large_repeated_case_uses_one_process_per_cpu_by_default(tmp_path, sink):
    from runner.run.request import AUTO_WORKERS_FROM

    plan = write_plan(tmp_path, TRANSACTION.format(port=sink))
    code, out, err = run(plan, "--repeat", str(AUTO_WORKERS_FROM), "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    load = load_of(tmp_path / "r.json")["load"]
    expected = min(_cpus(), 20)  # one per CPU, each with at least one of the 20 sessions in flight
    assert load["processes"] == expected
    assert load["sessions"] == load["passed"] == AUTO_WORKERS_FROM
    assert [s["count"] for s in load["steps"]] == [AUTO_WORKERS_FROM] * 6
    assert (f"({expected} processes)" in out) == (expected > 1)


@pytest.mark.parametrize("extra", [[], ["--workers", "auto"]])
def test_a_smaller_repeated_case_stays_in_one_process(tmp_path, sink, extra):
    from runner.run.request import AUTO_WORKERS_FROM

    plan = write_plan(tmp_path, TRANSACTION.format(port=sink))
    code, out, err = run(plan, "--repeat", str(AUTO_WORKERS_FROM - 1), *extra, "--json", str(tmp_path / "r.json"),
                         "--no-report")
    assert code == 0, out + err
    load = load_of(tmp_path / "r.json")["load"]
    assert load["processes"] == 1 and load["sessions"] == AUTO_WORKERS_FROM - 1
    assert "processes)" not in out


def test_workers_1_keeps_a_large_run_in_one_process(tmp_path, sink):
    plan = write_plan(tmp_path, TRANSACTION.format(port=sink))
    code, out, err = run(plan, "--repeat", "2500", "--workers", "1", "--json", str(tmp_path / "r.json"),
                         "--no-report")
    assert code == 0, out + err
    assert load_of(tmp_path / "r.json")["load"]["processes"] == 1


def test_a_refusing_servers_failures_are_counted_across_workers(tmp_path, sink):
    # smtp-sink greets with 220: a plan that expects 554 fails every session, in both workers
    plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {sink}, timeout: 10}}\n"
                                "steps:\n  - expect: 554\n")
    code, out, _ = run(plan, "--repeat", "40", "--jobs", "4", "--workers", "2", "--json", str(tmp_path / "r.json"),
                       "--no-report")
    assert code == 1
    case = load_of(tmp_path / "r.json")
    load = case["load"]
    assert load["sessions"] == load["failed"] == 40 and load["passed"] == 0
    [(why, times)] = load["failures"].items()
    assert why.startswith("expected 554, got 220") and times == 40
    assert f"40 × {why}" in out
    assert case["reason"] == "40 of 40 sessions failed"
    assert len([case, *case["attempts"]]) == 5  # failing sessions kept whole, no more than one process keeps


@pytest.mark.parametrize(("argv", "said"), [
    (["--workers", "0"], "--workers"),
    (["--workers", "two"], "expected auto or a whole number from 1, got 'two'"),
    (["--workers", "2"], "--workers shares the sessions of load mode among processes: give it with --repeat N"),
    (["--workers", "3", "--repeat", "10", "--jobs", "2"], "--workers 3 with --jobs 2"),
    (["--workers", "3", "--repeat", "10", "--per-host", "2"], "--workers 3 with --per-host 2"),
    (["--workers", "65", "--repeat", "100", "--jobs", "100"], "--workers 65: at most 64"),
])
def test_workers_out_of_place_is_a_usage_error(tmp_path, argv, said):
    plan = write_plan(tmp_path, "target: {host: 127.0.0.1, port: 9}\nsteps:\n  - expect: 220\n")
    code, out, err = run(plan, *argv, "--no-report")
    assert code == 2 and said in err, err
    assert "Traceback" not in err and out == ""


def _after_workers_started(act) -> threading.Thread:
    """A thread that waits (at most 60 s) until this process has two worker processes and they have run for
    a second, then acts on them."""
    def wait_then_act() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = {p.name: p.pid for p in multiprocessing.active_children() if p.name.startswith("smtprun-worker-")}
            if len(workers) == 2:
                time.sleep(1)
                act(workers)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=wait_then_act, daemon=True)
    thread.start()
    return thread


def test_a_worker_that_dies_fails_the_case_naming_it(tmp_path, sink):
    plan = write_plan(tmp_path, TRANSACTION.format(port=sink))
    killer = _after_workers_started(lambda workers: os.kill(workers["smtprun-worker-2"], signal.SIGKILL))
    code, out, err = run(plan, "--repeat", "1000000", "--jobs", "4", "--workers", "2", "--json",
                         str(tmp_path / "r.json"), "--no-report")
    killer.join()
    assert code == 1, out + err
    case = load_of(tmp_path / "r.json")
    assert case["status"] == "failed"
    assert "worker process 2 ended unexpectedly (killed by signal 9): its sessions are not in the figures" \
        in case["reason"]
    load = case["load"]  # the other worker's sessions, stopped when the case could no longer pass
    assert 0 < load["sessions"] < 1000000
    assert load["passed"] + load["failed"] == load["sessions"]
    assert all(load["passed"] <= s["count"] <= load["sessions"] for s in load["steps"])
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("smtprun-worker-")]


def test_ctrl_c_stops_every_worker_and_reports_their_sessions(tmp_path, sink):
    plan = write_plan(tmp_path, TRANSACTION.format(port=sink))
    interrupter = _after_workers_started(lambda _: os.kill(os.getpid(), signal.SIGINT))
    code, out, err = run(plan, "--repeat", "1000000", "--jobs", "4", "--workers", "2", "--json",
                         str(tmp_path / "r.json"), "--no-report")
    interrupter.join()
    assert code == 130, out + err
    case = load_of(tmp_path / "r.json")
    load = case["load"]
    assert 0 < load["sessions"] < 1000000 and "worker process" not in (case["reason"] or "")
    # every session of both processes counted (one cut short by the stop times the steps it reached)
    assert load["passed"] + load["failed"] == load["sessions"] and load["passed"] > 0
    assert all(load["passed"] <= s["count"] <= load["sessions"] for s in load["steps"])
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("smtprun-worker-")]
