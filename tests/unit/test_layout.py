"""The test suite's own layout (tests/README.md): no test module imports another; shared helpers are in
tests/support/, so a test file can be read, moved or deleted without breaking another."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _is_test_module(dotted: str) -> bool:
    """A module a test file must not import: a test module or a conftest, by dotted or bare name."""
    last = dotted.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def imported_test_modules(source: str, package: str) -> list[str]:
    """The test modules (`test_*` or `conftest`) that `source`, a module of `package`, imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names = [base] if base else []
            names += [f"{base}.{alias.name}" for alias in node.names]  # `from tests.unit import test_x`
            found += [name for name in names if _is_test_module(name)][:1]
    return found


def test_no_test_module_imports_another():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        package = ".".join(path.relative_to(TESTS.parent).parent.parts)
        offenders += [f"{path.relative_to(TESTS.parent)} imports {name}"
                      for name in imported_test_modules(path.read_text(encoding="utf-8"), package)]
    assert not offenders, "move what they share into tests/support/:\n" + "\n".join(offenders)


def test_the_import_check_sees_every_spelling_of_a_test_module_import():
    source = """\
from tests.support.engine import BANNER
import tests.support.peer
from runner.plan import read_plan
from tests.unit.test_engine import plan_of
import tests.integration.test_mailbox
from tests.unit import test_validation
from .test_wire import QUIT
from . import conftest
from test_mailbox import run_json

def later():
    import tests.unit.test_case as case
"""
    assert imported_test_modules(source, "tests.unit") == [
        "tests.unit.test_engine", "tests.integration.test_mailbox", "tests.unit.test_validation",
        "tests.unit.test_wire", "tests.unit.conftest", "test_mailbox", "tests.unit.test_case",
    ]


def test_no_two_test_files_share_a_name():
    """The test folders are not packages: pytest imports each test file by its bare name, so a second file of
    the same name in another folder stops the whole run at collection ("import file mismatch")."""
    seen: dict[str, list[str]] = {}
    for path in sorted(TESTS.rglob("test_*.py")):
        seen.setdefault(path.name, []).append(str(path.relative_to(TESTS)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}


def test_every_module_of_the_package_is_short_enough_to_read_in_one_sitting():
    """No module of runner/ over 400 lines (docs/architecture.md): past that, split it where it has two jobs."""
    runner = TESTS.parent / "runner"
    long = {str(p.relative_to(runner)): n for p in sorted(runner.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}
