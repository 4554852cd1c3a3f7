"""The table of step types (runner/plan/actions.py) is the one list: the schema, the engine and the docs
agree with it, and no other module keeps a list of step types of its own."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from runner.plan import options, read_plan
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


def _schema_keys(spec: dict) -> set[str] | None:
    """The keys a step type's schema allows in its mapping form (None: it has no mapping form)."""
    forms = [spec, *spec.get("oneOf", []), *spec.get("anyOf", [])]
    found = [set(form["properties"]) for form in forms if "properties" in form]
    return set().union(*found) if found else None


def test_each_options_class_has_a_field_for_every_key_the_schema_allows():
    """A key added to the schema without a field would be refused at run time, and a field the schema does
    not allow could never be set: the two agree, step type by step type."""
    steps = json.loads((ROOT / "schemas/plan.schema.json").read_text())["$defs"]["step"]["properties"]
    checked = 0
    for name, kind in KINDS.items():
        keys, typed = _schema_keys(steps[name]), kind.options_class()
        if typed is None or keys is None or typed.schema_keys() is None:
            continue
        assert typed.schema_keys() == keys, name
        checked += 1
    pipeline = _schema_keys(steps["pipeline"]["items"])
    assert KINDS["pipeline"].options_class() is options.Pipeline and pipeline is not None
    assert options.PipelineItem.schema_keys() == pipeline
    assert checked >= 3  # auth, smuggle, bdat at least


def test_each_row_names_an_options_class_that_exists():
    """A row names its class by a string (so the classes are made only when a plan uses one): a misspelt name
    would fail only when a plan with that step type is read."""
    for name, kind in KINDS.items():
        if kind.options:
            typed = kind.options_class()
            assert isinstance(typed, type) and issubclass(typed, options.Options), name
            assert typed.__name__ == kind.options, name


def test_a_plan_s_steps_carry_typed_options(tmp_path):
    plan_file = tmp_path / "p.yaml"
    plan_file.write_text(
        "target: {host: 127.0.0.1, port: 2525}\nvars: {sender: a@example.test, rcpt: b@example.test}\n"
        "steps:\n"
        "  - auth: {mechanism: PLAIN, username: u, password: p}\n"
        "  - pipeline: [{send: 'MAIL FROM:<a@example.test>', expect: 250}, {send: 'RCPT TO:<b@example.test>'}]\n"
        "  - bdat: {data: hello, chunk_size: 2}\n"
        "  - raw: ['a', {pause: 0.5}, 'b']\n"
        "  - smuggle: {ending: \"\\n.\\n\"}\n"
        "  - xclient: {ADDR: 192.0.2.1}\n")
    steps = read_plan(plan_file).cases[0].steps
    auth, pipeline, bdat, raw, smuggle, xclient = (step.value for step in steps)
    assert (auth.mechanism, auth.username) == ("PLAIN", "u")
    assert [(i.line, i.expect) for i in pipeline.items] == [("MAIL FROM:<a@example.test>", 250),
                                                             ("RCPT TO:<b@example.test>", None)]
    assert (bdat.data, bdat.chunk_size) == ("hello", 2)
    assert raw.pieces == ("a", options.Pause(0.5), "b")
    assert (smuggle.ending, smuggle.sender, smuggle.pause) == ("\n.\n", "{{ sender }}", 0.5)  # the defaults
    assert xclient.items == (("ADDR", "192.0.2.1"),)
