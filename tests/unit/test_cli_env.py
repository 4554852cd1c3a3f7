"""The command line in an Environment of the test's making: no subprocess, no network."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from runner.cli import main, program
from runner.environment import Environment, cache_folder
from runner.status import ExitStatus

ROOT = Path(__file__).resolve().parents[2]

# Every case skipped by its `when:`, so the run needs no server (nothing listens on port 9).
SKIPPED_PLAN = """\
name: all skipped
target: {host: 127.0.0.1, port: 9}
cases:
  - name: never
    when: "false"
    steps:
      - expect: 220
"""


@pytest.fixture
def plan(tmp_path: Path) -> str:
    path = tmp_path / "skipped.yaml"
    path.write_text(SKIPPED_PLAN)
    return str(path)


def environment(tmp_path: Path, cache: bool = True) -> Environment:
    return Environment(io.StringIO(""), io.StringIO(), io.StringIO(), tmp_path / "cache" if cache else None)


def test_json_dash_writes_to_the_stream_main_was_given(plan: str, tmp_path: Path, capsys) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["run", plan, "--json", "-", "--no-report"], out=out, err=err) == 0
    data = json.loads(out.getvalue())
    assert data["counts"] == {"passed": 0, "failed": 0, "skipped": 1}
    assert data["plans"][0]["name"] == "all skipped"
    assert "SKIP" in err.getvalue() and "1 skipped" in err.getvalue()  # the human output moved to stderr
    assert capsys.readouterr() == ("", "")  # nothing reached the process's own streams


def test_junit_dash_writes_to_the_environment_stdout(plan: str, tmp_path: Path, capsys) -> None:
    env = environment(tmp_path)
    assert main(["run", plan, "--junit", "-", "--no-report"], env=env) == 0
    root = ET.fromstring(env.stdout.getvalue())
    assert root.tag == "testsuites" and root.find("testsuite/testcase/skipped") is not None
    assert "1 skipped" in env.stderr.getvalue()
    assert capsys.readouterr() == ("", "")


def test_json_to_a_file_leaves_stdout_to_people(plan: str, tmp_path: Path) -> None:
    env = environment(tmp_path)
    assert main(["run", plan, "--json", str(tmp_path / "run.json"), "--no-report"], env=env) == 0
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "passed"
    assert "1 skipped" in env.stdout.getvalue() and env.stderr.getvalue() == ""


def test_validation_cache_is_kept_in_the_environment_cache_folder(plan: str, tmp_path: Path, monkeypatch) -> None:
    elsewhere = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(elsewhere))
    monkeypatch.delenv("SMTPRUN_NO_CACHE", raising=False)
    env = environment(tmp_path)
    assert program(["validate", plan], env) == ExitStatus.OK
    assert env.stdout.getvalue() == f"{plan}: ok (1 case)\n"
    assert len(list((tmp_path / "cache" / "valid").iterdir())) == 1  # the pass is remembered here
    assert not elsewhere.exists()  # and not where the process environment points
    assert program(["validate", plan], env) == ExitStatus.OK  # the remembered pass: still ok
    assert len(list((tmp_path / "cache" / "valid").iterdir())) == 1


def test_no_cache_folder_writes_no_cache(plan: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    env = environment(tmp_path, cache=False)
    assert program(["validate", plan], env) == ExitStatus.OK
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "cache").exists()


def test_the_process_environment_names_the_cache_folder(tmp_path: Path) -> None:
    assert cache_folder({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "smtprun"
    assert cache_folder({"XDG_CACHE_HOME": str(tmp_path), "SMTPRUN_NO_CACHE": "1"}) is None
    assert cache_folder({}) == Path(os.path.expanduser("~"), ".cache", "smtprun")


def test_usage_errors_go_to_the_environment_stderr(tmp_path: Path) -> None:
    env = environment(tmp_path)
    assert main(["run", "plan.yaml", "--json", "-", "--junit", "-"], env=env) == ExitStatus.USAGE
    assert env.stderr.getvalue() == "smtprun: --json - and --junit - cannot both write to standard output\n"
    assert env.stdout.getvalue() == ""


def test_an_unknown_embedded_profile_is_refused(plan: str, tmp_path: Path) -> None:
    env = environment(tmp_path)
    assert main(["run", plan, "--embedded", "--profile", "nosuch", "--no-report"], env=env) == ExitStatus.USAGE
    assert env.stderr.getvalue().startswith("smtprun: unknown profile 'nosuch'; choose from default")


@pytest.mark.parametrize(
    "code",
    [
        "import runner.report.jsonout",
        "import runner.report.junit",
        "from runner.report import write_json, write_junit",
        "import runner.report.format, runner.report.outputs, runner.text, runner.results",
    ],
)
def test_json_and_junit_output_do_not_load_jinja2(code: str) -> None:
    check = f"{code}\nimport sys\nassert 'jinja2' not in sys.modules, sorted(m for m in sys.modules if 'jinja' in m)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
