"""runner/plan/build.py: the Plan built from a validated file: variables from the command line, case names
made from a matrix and kept unique. (What the checks refuse is tests/unit/test_validation.py's.)
"""

from __future__ import annotations

from pathlib import Path

from runner.plan import read_plan
from tests.support.validation import only_problem, write


def test_variable_given_on_the_command_line(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  - send: 'EHLO {{ helo }}'\n")
    plan = read_plan(path, overrides={"helo": "client.test"})
    assert plan.vars == {"helo": "client.test"}


def test_two_cases_with_one_name_are_refused(tmp_path: Path) -> None:
    text = "cases:\n  - name: a\n    steps:\n      - expect: 220\n  - name: a\n    steps:\n      - expect: 220\n"
    assert only_problem(tmp_path, text) == ("5:5", "case name 'a' is used twice (first on line 2)")


def test_a_matrix_value_listed_twice_numbers_its_repeats(tmp_path: Path) -> None:
    plan = read_plan(write(tmp_path, "target: {host: h}\nmatrix: {port: [1, 1, 2]}\nsteps:\n  - expect: 220\n"))
    assert [c.name for c in plan.cases] == ["plan [port=1]", "plan [port=1] #2", "plan [port=2]"]


def test_literals_in_conditions_and_names_built_from_a_matrix(tmp_path: Path) -> None:
    text = """\
target: {host: h}
cases:
  - name: "relay via {{ helo }}"
    matrix: {helo: [a.test, b.test]}
    when: "false"
    steps:
      - expect: 220
"""
    plan = read_plan(write(tmp_path, text))
    assert [c.name for c in plan.cases] == ["relay via a.test", "relay via b.test"]
