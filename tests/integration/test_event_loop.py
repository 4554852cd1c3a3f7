"""uvloop runs a large run where it installs (a small one starts sooner without it: runner/run/loop.py); the
stock asyncio loop stays a working fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from runner.run.execute import event_loop_name
from runner.run.loop import UVLOOP_FROM
from tests.support.cli import ROOT, write_plan

PLAN = """\
target: {host: 127.0.0.1, port: 25, timeout: 5}
matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8]}
steps:
  - expect: 220
  - send: EHLO smtprun.test
    expect: 250
  - starttls: {cafile: /etc/smtprun-test/ca.pem}
  - send: QUIT
    expect: 221
"""


def _run(tmp_path, loop: str, *more: str) -> tuple[int, bool, str]:
    """The plan run in a fresh interpreter with SMTPRUN_EVENT_LOOP=`loop`: its status, whether uvloop ran it."""
    code = ("import json, sys; from runner.cli import main; status = main(sys.argv[1:]);"
            "import asyncio; print(json.dumps([status, 'uvloop' in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SMTPRUN_EVENT_LOOP": loop}
    done = subprocess.run([sys.executable, "-c", code, write_plan(tmp_path, PLAN), "--no-report", *more],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    status, uvloop = json.loads(done.stdout.splitlines()[-1])
    return status, uvloop, done.stdout + done.stderr


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_same_plan_passes_on_either_loop(tmp_path, postfix, loop):
    status, uvloop, out = _run(tmp_path, loop)
    assert (status, uvloop) == (0, loop == "uvloop"), out
    assert "8 passed" in out


def test_a_small_run_starts_without_uvloop_and_a_load_run_uses_it(tmp_path, postfix):
    """uvloop's import costs more than it saves over a few sessions (runner/run/loop.py UVLOOP_FROM)."""
    status, uvloop, out = _run(tmp_path, "")
    assert (status, uvloop) == (0, False), out
    status, uvloop, out = _run(tmp_path, "", "--repeat", str(UVLOOP_FROM // 8 + 1))  # 8 cases each time
    assert (status, uvloop) == (0, True), out


@pytest.mark.skipif(sys.platform == "win32" or sys.implementation.name != "cpython",
                    reason="uvloop's environment marker leaves it out here")
def test_uvloop_is_what_a_plain_install_runs_on(monkeypatch):
    monkeypatch.delenv("SMTPRUN_EVENT_LOOP", raising=False)
    assert event_loop_name() == "uvloop"  # `pip install .` installed it (pyproject's dependencies)
