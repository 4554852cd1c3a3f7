"""The table of step types (runner/plan/actions.py) is the one list: the schema, the engine and the docs
agree with it, and no other module keeps a list of step types of its own."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from runner.plan.actions import ACTIONS, KINDS, named
from runner.run.steps import ACTIONS as RUNNERS

ROOT = Path(__file__).resolve().parents[2]


def schema_actions() -> set[str]:
    step = json.loads((ROOT / "schemas/plan.schema.json").read_text())["$defs"]["step"]
    return set(step["dependentSchemas"]) - {"include"}  # include: steps of another file, no action of its own


def test_the_table_the_schema_and_the_engine_name_the_same_step_types():
    assert set(ACTIONS) == schema_actions()
    assert set(RUNNERS) == set(ACTIONS)
    assert all(RUNNERS[name].__name__ == f"do_{name}" for name in ACTIONS)


def test_every_step_type_is_documented():
    docs = (ROOT / "docs/plan-format.md").read_text()
    missing = [name for name in ACTIONS if f"`{name}`" not in docs]
    assert not missing


def test_traits_are_consistent():
    assert named("ends_data") <= named("command")  # a body is sent and answered like a command
    assert not (named("judges_own") & named("command"))  # either it judges its replies or expect: does
    for kind in KINDS.values():
        assert all(isinstance(field, str) for field in kind.large)
def _step_type_literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in KINDS}


def test_no_module_but_the_table_lists_step_types():
    """A module naming three or more step types keeps a list of its own: it should ask the table."""
    listing = {str(p.relative_to(ROOT)): sorted(found) for p in sorted((ROOT / "runner").rglob("*.py"))
               if len(found := _step_type_literals(p)) >= 3}
    assert set(listing) <= {"runner/plan/actions.py"}, listing
