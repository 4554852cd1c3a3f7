"""Plan files a user gets wrong, and the compiler-style message each one earns: file:line:col, what, a hint."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from runner.errors import PlanError
from runner.plan import Plan, read_plan
from runner.plan.load import MAX_PLAN_BYTES
from tests.support.validation import only_problem, problems, write

REPO = Path(__file__).resolve().parents[2]
UNSET_ENV = "SMTPRUN_TEST_SURELY_UNSET_VARIABLE"


def hint_of(tmp_path: Path, text: str) -> str | None:
    (found,) = problems(write(tmp_path, text))
    return found[2]


# --- keys the schema does not know -------------------------------------------------------------------------------

def test_misspelt_step_key(tmp_path: Path) -> None:
    text = "steps:\n  - sendd: EHLO client.test\n    expect: 250\n"
    assert only_problem(tmp_path, text) == ("2:5", "unknown key 'sendd' in step")
    assert hint_of(tmp_path, text) == "did you mean 'send'?"


def test_misspelt_target_key(tmp_path: Path) -> None:
    text = "target:\n  host: mx.example.test\n  prot: 25\nsteps:\n  - expect: 220\n"
    assert only_problem(tmp_path, text) == ("3:3", "unknown key 'prot' in target")
    assert hint_of(tmp_path, text) == "did you mean 'port'?"


def test_misspelt_expect_key(tmp_path: Path) -> None:
    text = "steps:\n  - send: EHLO client.test\n    expect:\n      code: 250\n      keyword: [DSN]\n"
    assert only_problem(tmp_path, text) == ("5:7", "unknown key 'keyword' in expect")
    assert hint_of(tmp_path, text) == "did you mean 'keywords'?"


def test_misspelt_expect_key_in_flow_mapping(tmp_path: Path) -> None:
    text = "steps:\n  - send: EHLO client.test\n    expect: {code: 250, txt: ok}\n"
    assert only_problem(tmp_path, text) == ("3:25", "unknown key 'txt' in expect")


def test_unknown_key_far_from_any_lists_the_allowed_ones(tmp_path: Path) -> None:
    text = "zzz: 1\nsteps:\n  - expect: 220\n"
    assert only_problem(tmp_path, text) == ("1:1", "unknown key 'zzz' in plan")
    top_level = sorted(json.loads((REPO / "schemas" / "plan.schema.json").read_text(encoding="utf-8"))["properties"])
    assert hint_of(tmp_path, text) == "allowed here: " + ", ".join(top_level)


# --- shape of steps, expectations and the plan -------------------------------------------------------------------

@pytest.mark.parametrize(("written", "hint"), [("1e3", "write 1.0e+3"), ("2.5E2", "write 2.5e+2")])
def test_an_exponent_yaml_reads_as_text_gets_the_spelling_it_reads_as_a_number(tmp_path: Path, written, hint) -> None:
    text = f"target:\n  host: mx.example.test\n  timeout: {written}\nsteps:\n  - expect: 220\n"
    assert only_problem(tmp_path, text) == ("3:12", "'timeout' must be a number, not a string")
    assert hint_of(tmp_path, text) == f"YAML reads {written} as text; {hint}"
    assert hint_of(tmp_path, text.replace("timeout: ", "timeout: x")) is None


def test_two_actions_in_one_step(tmp_path: Path) -> None:
    text = "steps:\n  - expect: 220\n  - send: EHLO client.test\n    data: hello\n"
    assert only_problem(tmp_path, text) == (
        "3:5", "a step does one thing: 'data' and 'send' cannot be given together")
    assert hint_of(tmp_path, text) == "split it into two steps"


def test_bad_expect_value(tmp_path: Path) -> None:
    text = "steps:\n  - send: EHLO client.test\n    expect: '2yy'\n"
    assert only_problem(tmp_path, text) == (
        "3:13", 'invalid expect: "2yy" — A reply code (250), or a class with x as wildcard ("2xx", "25x").')


def test_missing_steps_and_cases(tmp_path: Path) -> None:
    assert only_problem(tmp_path, "name: nothing to do\n") == (
        "1:1", "a plan needs 'steps:' (one session) or 'cases:' (several)")


def test_both_steps_and_cases(tmp_path: Path) -> None:
    text = "steps:\n  - expect: 220\ncases:\n  - steps:\n      - expect: 220\n"
    assert only_problem(tmp_path, text) == ("3:1", "give either 'steps' or 'cases', not both")


def test_case_without_steps(tmp_path: Path) -> None:
    text = "cases:\n  - name: first\n    steps:\n      - expect: 220\n  - name: second\n"
    assert only_problem(tmp_path, text) == ("5:5", "missing required key 'steps' in case")


def test_every_problem_is_reported_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, "target:\n  hots: x\nsteps:\n  - sendd: EHLO\n  - expect: '2yy'\n")
    assert [where.removeprefix(f"{path}:") for where, _, _ in problems(path)] == ["2:3", "4:5", "5:13"]


def test_problem_renders_like_a_compiler_message(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  - sendd: EHLO client.test\n")
    with pytest.raises(PlanError) as exc:
        read_plan(path)
    assert str(exc.value) == (
        f"{path}:2:5: error: unknown key 'sendd' in step\n"
        "      - sendd: EHLO client.test\n"
        "        ^\n"
        "    hint: did you mean 'send'?"
    )


# --- YAML itself -------------------------------------------------------------------------------------------------

def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = "steps:\n  - send: EHLO client.test\n   expect: 250\n"
    assert only_problem(tmp_path, text) == (
        "3:4", "YAML syntax: this line is indented less than the key above it")


def test_duplicate_key_names_the_first_line(tmp_path: Path) -> None:
    text = "steps:\n  - send: EHLO client.test\n    expect: 250\n    expect: 251\n"
    assert only_problem(tmp_path, text) == ("4:5", "duplicate key 'expect' (first given on line 3)")


def test_python_tag_is_refused_and_never_runs(tmp_path: Path) -> None:
    witness = tmp_path / "created-by-yaml"
    text = f'steps:\n  - send: !!python/object/apply:os.system ["touch {witness}"]\n'
    assert only_problem(tmp_path, text) == (
        "2:11", "YAML tag !!python/object/apply:os.system is not allowed: a plan holds plain data only")
    assert not witness.exists()


def test_alias_bomb_is_refused_fast(tmp_path: Path) -> None:
    lines = ["steps:", "  - &l0 {expect: 220}"]
    lines += [f"  - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]  # 9**9 steps once expanded
    path = write(tmp_path, "\n".join(lines) + "\n")
    start = time.process_time()
    found = problems(path)
    assert time.process_time() - start < 2
    assert [m for _, m, _ in found] == ["plan expands to more than 200000 values (alias expansion?)"]


def merge_bomb(levels: int) -> str:
    """A plan whose anchor m<i> merges nine copies of m<i-1>: 9**levels merges, in a few hundred bytes."""
    lines = ["steps:", "  - &m0 {expect: 220}"]
    lines += [f"  - &m{i}\n    <<: [{', '.join([f'*m{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_merge_key_bomb_is_refused_at_its_anchor_in_bounded_time(tmp_path: Path) -> None:
    cpu = {}
    for levels in (6, 12):  # 531,441 merges, then 282 billion
        folder = tmp_path / str(levels)
        folder.mkdir()
        assert len(merge_bomb(levels)) < 1024
        start = time.process_time()  # CPU time, which other processes on a loaded machine do not inflate
        assert only_problem(folder, merge_bomb(levels)) == (
            "2:5", "plan expands to more than 200000 values (merge keys)")
        cpu[levels] = time.process_time() - start
    # Merges expanded one by one would make six more levels cost 9**6 times as much; the bound makes it flat.
    assert cpu[12] < 5 * cpu[6] + 0.2, cpu
    assert cpu[12] < 2, cpu


def test_deeply_nested_yaml_is_a_plan_error(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  - send: " + "[" * 1000 + "]" * 1000 + "\n")
    assert any("nested" in message for _, message, _ in problems(path))


def test_nesting_past_the_depth_limit_is_refused(tmp_path: Path) -> None:
    text = "steps:\n  - send: " + "[" * 80 + "]" * 80 + "\n"
    assert only_problem(tmp_path, text) == ("2:73", "plan is nested deeper than 64 levels")


def test_file_over_one_mebibyte_is_refused(tmp_path: Path) -> None:
    head = "steps:\n  - expect: 220\n#"
    at_limit = head + "x" * (MAX_PLAN_BYTES - len(head) - 1) + "\n"
    assert isinstance(read_plan(write(tmp_path, at_limit)), Plan)
    over = at_limit + "\n"
    assert only_problem(tmp_path, over) == ("1:1", "plan file is larger than 1048576 bytes")


def test_non_utf8_file_names_the_byte(tmp_path: Path) -> None:
    text = b"steps:\n  - send: caf\xe9\n"
    assert only_problem(tmp_path, text) == ("2:14", "plan is not UTF-8: invalid byte 0xe9 at offset 20")


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    plan = read_plan(write(tmp_path, "\ufeffsteps:\n  - expect: 220\n"))
    assert plan.cases[0].steps[0].expect == 220


def test_anchors_and_merge_keys(tmp_path: Path) -> None:
    text = (
        "vars:\n  helo: client.test\n"
        "steps:\n"
        "  - &ehlo {send: 'EHLO {{ helo }}', expect: &ok {code: 250}}\n"
        "  - <<: *ehlo\n    expect: 251\n"
        "  - send: NOOP\n    expect: *ok\n"
        "  - <<: [*ehlo]\n    name: again\n"
    )
    steps = read_plan(write(tmp_path, text)).cases[0].steps
    assert [(s.action, s.value, s.expect, s.name) for s in steps] == [
        ("send", "EHLO {{ helo }}", {"code": 250}, None),
        ("send", "EHLO {{ helo }}", 251, None),  # the explicit key wins over the merged one
        ("send", "NOOP", {"code": 250}, None),
        ("send", "EHLO {{ helo }}", {"code": 250}, "again"),
    ]


# --- regexes -----------------------------------------------------------------------------------------------------

def test_bad_regex_in_expect_text(tmp_path: Path) -> None:
    text = "steps:\n  - send: EHLO client.test\n    expect: {code: 250, text: 'a(b'}\n"
    assert only_problem(tmp_path, text) == ("3:31", "bad regex 'a(b': missing ), unterminated subpattern at position 1")


def test_bad_regex_in_capture(tmp_path: Path) -> None:
    text = "steps:\n  - send: DATA\n    capture:\n      queue_id: '[A-F'\n"
    assert only_problem(tmp_path, text) == ("4:17", "bad regex '[A-F': unterminated character set at position 0")


# --- template variables ------------------------------------------------------------------------------------------

def test_undefined_variable(tmp_path: Path) -> None:
    text = "steps:\n  - send: 'EHLO {{ helo }}'\n"
    assert only_problem(tmp_path, text) == ("2:11", "undefined variable 'helo'")
    assert hint_of(tmp_path, text) == (
        "define it under vars:, pass --var helo=..., or capture it in an earlier step")


def test_undefined_variable_close_to_a_defined_one(tmp_path: Path) -> None:
    text = "vars: {client: a.test}\nsteps:\n  - send: 'EHLO {{ clinet }}'\n"
    assert only_problem(tmp_path, text) == ("3:11", "undefined variable 'clinet'")
    assert hint_of(tmp_path, text) == "did you mean 'client'?"


def test_capture_used_in_a_later_step(tmp_path: Path) -> None:
    text = (
        "steps:\n"
        "  - send: DATA\n    capture: {queue_id: 'queued as (\\w+)'}\n"
        "  - send: 'NOOP {{ queue_id }}'\n"
    )
    steps = read_plan(write(tmp_path, text)).cases[0].steps
    assert steps[0].capture == {"queue_id": "queued as (\\w+)"}


def test_capture_used_before_it_is_captured(tmp_path: Path) -> None:
    text = (
        "steps:\n"
        "  - send: 'NOOP {{ queue_id }}'\n"
        "  - send: DATA\n    capture: {queue_id: 'queued as (\\w+)'}\n"
    )
    assert only_problem(tmp_path, text) == ("2:11", "undefined variable 'queue_id'")


def test_capture_does_not_leak_into_the_next_case(tmp_path: Path) -> None:
    text = (
        "cases:\n"
        "  - steps:\n      - send: DATA\n        capture: {queue_id: 'as (\\w+)'}\n"
        "  - steps:\n      - send: 'NOOP {{ queue_id }}'\n"
    )
    assert only_problem(tmp_path, text) == ("6:15", "undefined variable 'queue_id'")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ ''.__class__.__mro__ }}",
         "template tried a forbidden operation: access to attribute '__class__' of 'str' object is unsafe."),
        ("{{ cycler.__init__.__globals__ }}",
         "template tried a forbidden operation: access to attribute '__init__' of 'type' object is unsafe."),
    ],
)
def test_sandbox_escape_is_a_plan_error(tmp_path: Path, template: str, message: str) -> None:
    assert only_problem(tmp_path, f'steps:\n  - send: "{template}"\n') == ("2:11", message)


def test_unset_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UNSET_ENV, raising=False)
    path = write(tmp_path, f"steps:\n  - send: 'AUTH PLAIN {{{{ env.{UNSET_ENV} }}}}'\n")
    assert [(w.removeprefix(f"{path}:"), m) for w, m, _ in problems(path)] == [
        ("2:11", f"environment variable {UNSET_ENV} is not set")]
    monkeypatch.setenv(UNSET_ENV, "dG9rZW4=")
    assert read_plan(path).cases[0].steps[0].value == f"AUTH PLAIN {{{{ env.{UNSET_ENV} }}}}"


# --- the plans and the schema the project ships ------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted((REPO / "plans").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_plan_validates(path: Path) -> None:
    assert read_plan(path).cases


def test_plans_are_shipped() -> None:
    assert sorted((REPO / "plans").glob("*.yaml"))


def _undescribed(node: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Schema paths of every property with no description of its own or behind its $ref."""
    found = []
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            if isinstance(sub, bool):  # `key: false` only forbids a key defined elsewhere
                continue
            target = sub
            if isinstance(sub, dict) and "$ref" in sub and "description" not in sub:
                target = schema
                for part in sub["$ref"].removeprefix("#/").split("/"):
                    target = target[part]
            if not (isinstance(target, dict) and "description" in target):
                found.append(f"{where}/properties/{name}")
        for key, sub in node.items():
            found += _undescribed(sub, schema, f"{where}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            found += _undescribed(sub, schema, f"{where}/{i}")
    return found


def test_schema_is_a_valid_2020_12_schema() -> None:
    schema = json.loads((REPO / "schemas" / "plan.schema.json").read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_every_schema_property_has_a_description() -> None:
    schema = json.loads((REPO / "schemas" / "plan.schema.json").read_text(encoding="utf-8"))
    assert _undescribed(schema, schema, "#") == []


@pytest.mark.parametrize(("text", "where", "message"), [
    ("", "1:1", "'plan' must be a mapping, not empty"),
    ("- a\n- b\n", "1:1", "'plan' must be a mapping, not a list"),
    ("steps:\n  - {}\n", "2:5", "an empty step: give an action (send, data, ...) or an expect"),
    ("steps:\n  - expect: 220\n    timeout: -1\n", "3:14", "'timeout' must be more than 0, not -1"),
    ("steps: []\n", "1:8", "'steps' must not be empty"),
    ("target: {host: a, mx: b}\nsteps:\n  - expect: 220\n", "1:9",
     "'host' and 'mx' cannot be given together in target"),
    ("steps:\n  - expect_delivery:\n      mailbox: maildir:/m\n      authentication_results: {authserv_id: x}\n",
     "4:31", "'authentication_results' names no result to check: give dkim, spf, dmarc, arc or iprev beside "
             "authserv_id"),
    ("target: {mx: b.test, addresses: all}\nsteps:\n  - expect: 220\n", "1:9",  # it chooses among all: true's
     "missing required key 'all' in target"),
    ("target: {mx: b.test, all: false, addresses: all}\nsteps:\n  - expect: 220\n", "1:27",
     "'all' takes only the value true"),
])
def test_shapes_are_explained_once_in_plain_words(tmp_path: Path, text: str, where: str, message: str) -> None:
    assert only_problem(tmp_path, text) == (where, message)


def test_jinja_templates_keep_every_cr_and_lf_as_written() -> None:
    from runner.template import render

    text = "Subject: x\r\n\r\nfirst\r.\rMAIL FROM:<{{ s | lower }}>\n\r\n.\r\n"
    want = "Subject: x\r\n\r\nfirst\r.\rMAIL FROM:<evil@example.com>\n\r\n.\r\n"
    assert render(text, {"s": "Evil@Example.com"}) == want


@pytest.mark.parametrize("template", [
    "{{ ('x'*1000000)|replace('x','x'*3000) }}",
    "{% for a in range(100000) %}{{ range(100000)|join|length }}{% endfor %}",
])
def test_templates_built_to_exhaust_memory_or_time_are_refused(tmp_path: Path, template: str) -> None:
    where, message = only_problem(tmp_path, f'steps:\n  - raw: "{template}"\n')
    assert where == "2:10"
    assert message in ("template needs more than 512 MB", "template took longer than 2s")


def test_tab_indentation_gets_a_hint(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as exc:
        read_plan(write(tmp_path, "steps:\n\t- expect: 220\n"))
    assert exc.value.problems[0].hint == "YAML indents with spaces, never tabs"


def test_cr_inside_an_expression_is_a_cr() -> None:
    from runner.template import evaluate, render

    body = "line1\r\nline2"
    assert render("{{ body | replace('\r\n', ' / ') }}", {"body": body}) == "line1 / line2"
    assert render("{{ body.split('\r\n') | length }}\r", {"body": body}) == "2\r"
    assert evaluate("'\r' in body", {"body": body}) is True


# --- included files ----------------------------------------------------------------------------------------------

def test_an_included_bare_list_of_steps_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text("# the greeting\n- expect: 220\n- send: 'EHLO {{ helo }}'\n  expect: 250\n")
    plan = read_plan(write(tmp_path, "vars: {helo: a.test}\nsteps:\n  - include: hello.yaml\n  - send: QUIT\n"))
    steps = plan.cases[0].steps
    assert [(s.action, s.value, Path(s.file or "").name, s.line) for s in steps] == [
        ("expect", 220, "hello.yaml", 2), ("send", "EHLO {{ helo }}", "hello.yaml", 3),
        ("send", "QUIT", "plan.yaml", 4)]


def test_errors_in_an_included_bare_list_point_into_it(tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text("- expect: 220\n- sned: EHLO a.test\n")
    found = problems(write(tmp_path, "steps:\n  - include: hello.yaml\n"))
    assert found == [(f"{tmp_path / 'hello.yaml'}:2:3", "unknown key 'sned' in step", "did you mean 'send'?")]


@pytest.mark.parametrize(("text", "message"), [
    ("stepz:\n  - expect: 220\n", "unknown key 'stepz' in included file"),
    ("hello\n", "an included file holds a list of steps, or a mapping with 'steps:' (and 'vars:', "
                "'description:'), not a string"),
    ("- !!python/name:os.system\n", "YAML tag !!python/name:os.system is not allowed: an included file holds "
                                    "plain data only"),
])
def test_problems_with_an_included_file_call_it_that(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "inc.yaml").write_text(text)
    found = problems(write(tmp_path, "steps:\n  - include: inc.yaml\n"))
    assert found[0][0].startswith(f"{tmp_path / 'inc.yaml'}:1:")
    assert found[0][1] == message
    assert not any("plan" in m for _, m, _ in found)


def test_a_missing_included_file_is_reported_at_the_include(tmp_path: Path) -> None:
    assert only_problem(tmp_path, "steps:\n  - expect: 220\n  - include: common/nope.yaml\n") == (
        "3:14", "cannot read included file common/nope.yaml: No such file or directory")


def test_a_plan_that_is_a_bare_list_says_what_a_plan_starts_with(tmp_path: Path) -> None:
    assert problems(write(tmp_path, "- expect: 220\n")) == [(
        f"{tmp_path / 'plan.yaml'}:1:1", "'plan' must be a mapping, not a list",
        "a plan starts with 'steps:' or 'cases:'; a bare list of steps is a file to include")]


def test_the_schema_the_checker_and_the_engine_know_the_same_actions() -> None:
    from runner.plan.stepbuilder import ACTIONS
    from runner.run.steps import ACTIONS as RUN

    step = json.loads((REPO / "schemas" / "plan.schema.json").read_text(encoding="utf-8"))["$defs"]["step"]
    exclusive = step["dependentSchemas"]
    assert set(exclusive) == {*ACTIONS, "include"} == {*RUN, "include"}
    for action, schema in exclusive.items():  # each action excludes every other one
        assert {*ACTIONS, "include"} - {action} <= set(schema["properties"]), action
    assert all(action in step["description"] for action in ACTIONS)
