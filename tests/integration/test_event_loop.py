"""uvloop is the default event loop where it installs; the stock asyncio loop stays a working fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from runner.run.execute import event_loop_name
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


@pytest.mark.parametrize("loop", ["asyncio", ""])
def test_the_same_plan_passes_on_either_loop(tmp_path, postfix, loop):
    code = ("import json, sys; from runner.run.execute import event_loop_name; from runner.cli import main;"
            "status = main(sys.argv[1:]); print(json.dumps([status, event_loop_name()]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SMTPRUN_EVENT_LOOP": loop}
    done = subprocess.run([sys.executable, "-c", code, write_plan(tmp_path, PLAN), "--no-report"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    status, name = json.loads(done.stdout.splitlines()[-1])
    assert (status, name) == (0, "asyncio" if loop else "uvloop"), done.stdout + done.stderr
    assert "8 passed" in done.stdout


@pytest.mark.skipif(sys.platform == "win32" or sys.implementation.name != "cpython",
                    reason="uvloop's environment marker leaves it out here")
def test_uvloop_is_what_a_plain_install_runs_on(monkeypatch):
    monkeypatch.delenv("SMTPRUN_EVENT_LOOP", raising=False)
    assert event_loop_name() == "uvloop"  # `pip install .` installed it (pyproject's dependencies)
