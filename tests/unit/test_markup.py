"""runner/report/markup.py: the report templates compiled once and kept in the cache folder; the page never
depends on whether, or how well, they were kept."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from jinja2 import FileSystemLoader
from jinja2.sandbox import SandboxedEnvironment

from runner.report import markup
from runner.report.html import render_report
from tests.support.results import standard_run


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The process's cache folder in tmp_path, and a template environment that has compiled nothing yet."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SMTPRUN_NO_CACHE", raising=False)
    markup.environment.cache_clear()
    yield tmp_path / "xdg" / "smtprun" / "templates"
    markup.environment.cache_clear()


def page() -> str:
    """The report page of a run, rendered by a fresh environment as a new process would."""
    markup.environment.cache_clear()
    run = standard_run()
    return render_report(run, run.plans[0])


def kept(folder: Path) -> dict[str, int]:
    """The compiled templates kept: file name -> inode (a file rewritten gets a new one)."""
    return {p.name: p.stat().st_ino for p in folder.iterdir()}


def test_templates_are_compiled_once_and_the_page_is_the_same(cache: Path) -> None:
    first = page()
    files = kept(cache)
    assert len(files) >= 3  # the page, its style sheet, the advice
    assert all(stat.S_IMODE((cache / name).stat().st_mode) == 0o600 for name in files)
    assert page() == first
    assert kept(cache) == files  # read, not compiled and written again


@pytest.mark.parametrize("damage", [b"", b"garbage", None])
def test_damaged_compiled_templates_are_compiled_again(cache: Path, damage: bytes | None) -> None:
    first = page()
    for path in cache.iterdir():
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage is None else damage)  # None: cut in half
    assert page() == first
    files = kept(cache)
    assert page() == first and kept(cache) == files  # written whole again, and read back next time


def test_a_cache_folder_that_cannot_be_written_costs_only_time(tmp_path: Path, cache: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "xdg").write_text("a file where the cache folder should be")
    shown = page()
    monkeypatch.setenv("SMTPRUN_NO_CACHE", "1")
    assert page() == shown


def test_a_changed_template_is_compiled_again(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    compiled = markup.CompiledTemplates(tmp_path / "cache")

    def render() -> str:
        env = SandboxedEnvironment(loader=FileSystemLoader(templates), bytecode_cache=compiled)
        return env.get_template("t.j2").render(x=1)

    (templates / "t.j2").write_text("one {{ x }}")
    assert render() == "one 1" and render() == "one 1"
    (templates / "t.j2").write_text("two {{ x }}")
    assert render() == "two 1"


def test_another_smtprun_version_compiles_its_own(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = page()
    files = kept(cache)
    monkeypatch.setattr(markup, "__version__", "0.0.0-other")
    assert page() == first
    assert kept(cache).items() > files.items()  # the first version's files untouched, the other's beside them
    assert len(kept(cache)) == 2 * len(files)


def test_the_cache_folder_is_made_private(cache: Path) -> None:
    page()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700 and cache.stat().st_uid == os.geteuid()
