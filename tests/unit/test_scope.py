"""One scope per case: the names its templates see, and the secrets its outputs hide."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from runner.arguments import name_value
from runner.plan import Plan, read_plan
from runner.plan.scope import Scope
from runner.run.steprender import StepRenderer

PLAN = """\
name: scope
vars:
  user: alice
  password: hunter2-{{ user }}
  login: "{{ who }}@example.test"
secrets: [password, login]
matrix:
  who: [bob, carol]
steps:
  - expect: 220
  - include: part.yaml
    vars:
      greeting: "hello {{ first }}"
"""
PART = """\
vars:
  fallback: "{{ user }}"
steps:
  - send: "NOOP {{ greeting }}"
    expect: 250
  - send: "NOOP {{ fallback }}"
    expect: 250
"""


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    (tmp_path / "part.yaml").write_text(PART, encoding="utf-8")
    (tmp_path / "plan.yaml").write_text(PLAN.replace("{{ first }}", "{{ user }}"), encoding="utf-8")
    return read_plan(tmp_path / "plan.yaml", {"user": "dave"})


def test_each_case_renders_its_matrix_dependent_variables_and_hides_them(plan: Plan) -> None:
    scope = Scope.for_plan(plan, {"token": "s3cr3t-token"})
    bob, carol = (scope.for_case(plan, case) for case in plan.cases)
    assert (bob.values["login"], carol.values["login"]) == ("bob@example.test", "carol@example.test")
    assert bob.values["password"] == "hunter2-dave"  # --var over the plan's value, rendered once at build
    assert bob.redactor.text("bob@example.test hunter2-dave s3cr3t-token") == "*** *** ***"
    assert bob.redactor.text("carol@example.test") == "carol@example.test"  # another case's secret


def test_a_secret_learned_in_one_case_stays_in_that_case(plan: Plan) -> None:
    scope = Scope.for_plan(plan)
    bob, carol = (scope.for_case(plan, case) for case in plan.cases)
    bob.secret("auth-password-of-bob")
    assert bob.redactor.text("auth-password-of-bob") == "***"
    assert carol.redactor.text("auth-password-of-bob") == "auth-password-of-bob"
    assert scope.redactor.text("auth-password-of-bob") == "auth-password-of-bob"


def test_a_sequential_plan_carries_captures_ehlo_and_secrets_to_the_next_case(plan: Plan) -> None:
    scope = Scope.for_plan(plan)
    first = scope.for_case(plan, plan.cases[0])
    first.set("ehlo", {"PIPELINING": ""})
    first.secret("auth-password")
    scope.learn(first, {"queue_id": "4ABC"})
    second = scope.for_case(plan, plan.cases[1])
    assert second.values["queue_id"] == "4ABC" and second.values["ehlo"] == {"PIPELINING": ""}
    assert second.redactor.text("auth-password") == "***"


def test_a_variable_that_cannot_render_for_a_case_says_why(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(
        "vars:\n  rcpt: \"{{ who.name }}\"\nmatrix:\n  who: [bob]\nsteps:\n  - expect: 220\n", encoding="utf-8")
    plan = read_plan(tmp_path / "plan.yaml")
    case = Scope.for_plan(plan).for_case(plan, plan.cases[0])
    assert case.late_error is not None and case.late_error.startswith("vars: ")


def test_include_parameters_are_rendered_once_per_case(plan: Plan) -> None:
    case = Scope.for_plan(plan).for_case(plan, plan.cases[0])
    renderer = StepRenderer(case)
    greeting, fallback = plan.cases[0].steps[1:]
    assert greeting.include is fallback.include is not None
    assert renderer.text(greeting, greeting.value) == "NOOP hello dave"
    case.set("user", "eve")  # a later capture does not change what the include was given
    assert renderer.text(fallback, fallback.value) == "NOOP dave"
    assert StepRenderer(case).text(fallback, fallback.value) == "NOOP eve"


@pytest.mark.parametrize("text", ["novalue", "=x", "1a=b", "a-b=c"])
def test_name_value_refuses_what_is_not_a_name_and_a_value(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        name_value(text)


def test_name_value_keeps_everything_after_the_first_equals_sign() -> None:
    assert name_value("dsn=a=b=c") == ("dsn", "a=b=c")
