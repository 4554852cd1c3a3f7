"""What `pip install .` puts on a machine: the schema (the same file as schemas/), templates, entry points."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_the_schema_templates_and_commands(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    [wheel] = tmp_path.glob("smtprun-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert zf.read("runner/schemas/plan.schema.json") == (ROOT / "schemas/plan.schema.json").read_bytes()
        assert {"runner/report/templates/report.html.j2", "runner/report/templates/index.html.j2"} <= names
        entry_points = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "smtprun = runner.cli:main" in entry_points
    assert "smtprun = runner.tools.pytest_plugin" in entry_points
