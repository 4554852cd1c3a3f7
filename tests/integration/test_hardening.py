"""Odd files and odd servers found by fuzzing: each is a named error, never a hang or a traceback.

Plans name real FIFOs, symlink loops and /proc files; servers are tests/support/faults.py servers,
scripted to send exact bytes. Runs that could hang go through a subprocess with a time limit, so a
regression fails the test instead of stopping the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import ROOT, write_plan
from tests.support.faults import BANNER, FaultServer, Peer, converse

TIMEOUT = 2
ENVELOPE = """\
  - expect: 220
  - send: EHLO client.test
    expect: 250
  - send: "MAIL FROM:<a@client.test>"
    expect: 250
  - send: "RCPT TO:<b@faults.test>"
    expect: 250
  - send: DATA
    expect: 354
"""


def smtprun(*argv: str, limit: float = 30) -> tuple[int, str, float]:
    """`python -m runner ARGV` in a subprocess: exit status, stdout and stderr together, seconds taken."""
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "runner", *argv], cwd=ROOT, capture_output=True, text=True,
                              timeout=limit)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"smtprun {' '.join(argv)} still running after {limit}s: {exc.stdout!r} {exc.stderr!r}")
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def fifo(tmp_path: Path, name: str = "fifo") -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def loop(tmp_path: Path, name: str = "loop") -> Path:
    path = tmp_path / name
    path.symlink_to(name)
    return path


# --- 1. FIFOs never hang a run or a validation --------------------------------------------------------------

def test_a_templated_data_file_that_is_a_fifo_fails_its_step_at_once(tmp_path):
    fifo(tmp_path)
    with FaultServer("normal") as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: {TIMEOUT}, "
                                    "session_timeout: 5}\nvars: {f: fifo}\nsteps:\n" + ENVELOPE
                          + '  - data_file: "{{ f }}"\n    expect: 250\n')
        code, out, elapsed = smtprun(plan, "--no-report")
    assert code == 1, out
    assert f"why:      cannot read data_file {tmp_path}/fifo: a named pipe (FIFO), not a regular file" in out
    assert "Traceback" not in out and elapsed < TIMEOUT + 5


def test_a_cafile_that_is_a_fifo_fails_the_starttls_step_at_once(tmp_path):
    fifo(tmp_path, "ca.pem")

    def starttls(peer: Peer) -> None:
        peer.send(BANNER)
        converse(peer, special={"STARTTLS": b"220 2.0.0 go ahead\r\n"})

    with FaultServer(starttls) as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: {TIMEOUT}}}\n"
                                    f"steps:\n  - expect: 220\n  - send: EHLO client.test\n    expect: 250\n"
                                    f"  - starttls: {{cafile: {tmp_path}/ca.pem}}\n")
        code, out, elapsed = smtprun(plan, "--no-report")
    assert code == 1, out
    assert f"why:      cannot read cafile {tmp_path}/ca.pem: a named pipe (FIFO), not a regular file" in out
    assert elapsed < TIMEOUT + 5


def test_a_target_cafile_that_is_a_fifo_fails_the_case_at_once(tmp_path):
    fifo(tmp_path, "ca.pem")
    with FaultServer("normal") as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: {TIMEOUT}, "
                                    f"tls: implicit, cafile: {tmp_path}/ca.pem}}\nsteps:\n  - expect: 220\n")
        code, out, elapsed = smtprun(plan, "--no-report")
    assert code == 1, out
    assert f"cannot read cafile {tmp_path}/ca.pem: a named pipe (FIFO), not a regular file" in out
    assert elapsed < TIMEOUT + 5


def test_validate_refuses_a_fifo_as_plan_or_include_without_waiting(tmp_path):
    fifo(tmp_path, "plan-fifo.yaml")
    fifo(tmp_path, "part.yaml")
    plan = write_plan(tmp_path, "steps:\n  - include: part.yaml\n")
    code, out, elapsed = smtprun("validate", str(tmp_path / "plan-fifo.yaml"), plan)
    assert code == 2, out
    assert f"{tmp_path}/plan-fifo.yaml:1:1: error: cannot read plan: a named pipe (FIFO), not a regular file" in out
    assert f"{tmp_path}/part.yaml:1:1: error: cannot read plan: a named pipe (FIFO), not a regular file" in out
    assert f"note: included from {plan}:2" in out
    assert elapsed < 10

