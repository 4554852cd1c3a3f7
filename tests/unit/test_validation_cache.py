"""Plans that passed the schema before are not checked again (runner/plan/schema.py's ValidationCache), but
a changed plan, included file or smtprun is, and nothing in the cache folder can make an invalid plan run."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from runner.cli import main
from runner.environment import Environment
from runner.errors import PlanError
from runner.plan import read_plan
from runner.plan.load import load_file
from runner.plan.schema import ValidationCache, validate
from runner.status import ExitStatus

PLAN = """\
name: cached
target: {host: 127.0.0.1, port: 9}
steps:
  - expect: 220
  - include: common.yaml
"""
INCLUDED = "- send: EHLO smtprun.test\n  expect: 250\n"
TYPO = "unknown key 'sendd' in step"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Environment:
    """The command line's environment, its cache folder (and the process's, which included files use) in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SMTPRUN_NO_CACHE", raising=False)
    return Environment(io.StringIO(""), io.StringIO(), io.StringIO(), tmp_path / "xdg" / "smtprun")


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    (tmp_path / "common.yaml").write_text(INCLUDED)
    (tmp_path / "plan.yaml").write_text(PLAN)
    return tmp_path / "plan.yaml"


def validated(plan: Path, env: Environment) -> tuple[ExitStatus, str]:
    env.stdout.seek(0), env.stdout.truncate(), env.stderr.seek(0), env.stderr.truncate()
    return main(["validate", str(plan)], env=env), env.stderr.getvalue()


def remembered(env: Environment) -> list[Path]:
    assert env.cache_dir is not None
    return sorted((env.cache_dir / "valid").iterdir())


def test_a_plan_made_invalid_after_it_passed_is_refused(plan: Path, env: Environment) -> None:
    assert validated(plan, env) == (ExitStatus.OK, "")
    assert len(remembered(env)) == 2  # the plan and the file it includes
    plan.write_text(PLAN.replace("- expect: 220", "- sendd: NOOP"))
    status, err = validated(plan, env)
    assert status == ExitStatus.USAGE and f"{plan}:4:5: error: {TYPO}" in err


def test_an_included_file_made_invalid_after_it_passed_is_refused(plan: Path, env: Environment) -> None:
    assert validated(plan, env) == (ExitStatus.OK, "")
    (plan.parent / "common.yaml").write_text(INCLUDED.replace("send:", "sendd:"))
    status, err = validated(plan, env)
    assert status == ExitStatus.USAGE and f"common.yaml:1:3: error: {TYPO}" in err


def invalid_but_remembered(tmp_path: Path, cache: ValidationCache) -> Path:
    """A plan the schema refuses, which `cache` holds as passed (as if it had changed since)."""
    path = tmp_path / "invalid.yaml"
    path.write_text("steps:\n  - sendd: NOOP\n")
    cache.remember(load_file(path), "plan")
    return path


def test_a_pass_is_kept_for_the_smtprun_version_that_checked_it(tmp_path: Path) -> None:
    folder = tmp_path / "valid"
    path = invalid_but_remembered(tmp_path, ValidationCache(folder, version="1.0"))
    assert validate(load_file(path), cache=ValidationCache(folder, version="1.0")) == []  # the cache is in use
    with pytest.raises(PlanError, match=TYPO):
        read_plan(path, cache=ValidationCache(folder, version="1.1"))


@pytest.mark.parametrize("damage", ["empty", "cut", "garbage", "longer"])
def test_a_damaged_cache_file_is_no_pass(tmp_path: Path, damage: str) -> None:
    cache = ValidationCache(tmp_path / "valid")
    path = invalid_but_remembered(tmp_path, cache)
    [entry] = (tmp_path / "valid").iterdir()
    data = entry.read_bytes()
    entry.write_bytes({"empty": b"", "cut": data[:-5], "garbage": os.urandom(len(data)), "longer": data + b"x"}[damage])
    with pytest.raises(PlanError, match=TYPO):
        read_plan(path, cache=cache)


@pytest.mark.parametrize("bits", [0o020, 0o002])
def test_a_cache_folder_others_can_write_to_is_not_believed(tmp_path: Path, bits: int) -> None:
    cache = ValidationCache(tmp_path / "valid")
    path = invalid_but_remembered(tmp_path, cache)
    os.chmod(tmp_path / "valid", 0o700 | bits)
    with pytest.raises(PlanError, match=TYPO):
        read_plan(path, cache=cache)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_pass_another_user_wrote_is_not_believed(tmp_path: Path) -> None:
    cache = ValidationCache(tmp_path / "valid")
    path = invalid_but_remembered(tmp_path, cache)
    [entry] = (tmp_path / "valid").iterdir()
    os.chown(entry, 65534, 65534)
    with pytest.raises(PlanError, match=TYPO):
        read_plan(path, cache=cache)


def test_a_cache_folder_that_cannot_be_written_changes_nothing(plan: Path, env: Environment, tmp_path: Path) -> None:
    (tmp_path / "xdg").write_text("a file where the cache folder should be")
    assert validated(plan, env) == (ExitStatus.OK, "")
    assert validated(plan, env) == (ExitStatus.OK, "")
    plan.write_text(PLAN.replace("- expect: 220", "- sendd: NOOP"))
    assert validated(plan, env)[0] == ExitStatus.USAGE


def test_a_pass_is_written_private(plan: Path, env: Environment) -> None:
    validated(plan, env)
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in remembered(env))
    assert env.cache_dir is not None and ((env.cache_dir / "valid").stat().st_mode & 0o777) == 0o700
