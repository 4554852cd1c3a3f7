"""The command line run in-process, as most tests drive it, or in a process of its own; plans written to a test's
folder."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from runner.cli import main

ROOT = Path(__file__).resolve().parents[2]  # the repository: plans/, schemas/, pyproject.toml


def run(*argv: str) -> tuple[int, str, str]:
    """smtprun ARGV in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def run_process(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """smtprun ARGV in a process of its own, the working tree's code (python -m runner), its output as text."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "runner", *argv], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def write_plan(tmp_path: Path, text: str, name: str = "plan.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)
