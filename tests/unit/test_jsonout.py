"""The --json file written case by case as the run goes: the same document as the run written whole."""

from __future__ import annotations

import io
import json
import random
from dataclasses import replace

import pytest

from runner.errors import ReportError
from runner.report.jsonout import JsonStream, json_text
from runner.report.restore import read_result
from runner.results import PlanResult, RunResult
from tests.support.results import T0, failing_case, passing_case, skipped_case


def two_plans() -> RunResult:
    cases = [replace(c, position=i) for i, c in
             enumerate([passing_case("a"), failing_case("b"), skipped_case(), passing_case("d")])]
    first = PlanResult("basic checks", "plans/basic.yaml", "name: basic\n", "mx.example.test:25", cases)
    empty = PlanResult("nothing", "plans/none.yaml", "name: none\n", "mx.example.test:25")
    return RunResult("0.1.0", T0, [first, empty], duration=0.5)


def test_cases_streamed_in_any_order_make_the_document_written_whole(tmp_path):
    run = two_plans()
    stream = JsonStream(tmp_path / "r.json")
    plan = run.plans[0]
    for case in random.Random(1).sample(plan.cases[:3], 3):  # the last case never ended: written as it stands
        stream.add(plan, case)
    assert not (tmp_path / "r.json").exists(), "nothing there until the run has ended"
    stream.write(run, tmp_path / "r.json")
    assert (tmp_path / "r.json").read_text(encoding="utf-8") == json_text(run)
    assert [c.name for c in read_result(tmp_path / "r.json").plans[0].cases] == ["a", "b", "needs TLS", "d"]
    assert list(tmp_path.iterdir()) == [tmp_path / "r.json"], "no spool left behind"


def test_standard_output_and_undecodable_bytes(tmp_path):
    run = two_plans()
    plan = run.plans[0]
    plan.cases[1].reason = "got \udcff from the server"  # an undecodable byte kept as text
    plan.cases[0].steps[0].details = {250: "a key that is not a string"}
    stream, out = JsonStream("-"), io.StringIO()
    for case in plan.cases:
        stream.add(plan, case)
    stream.write(run, "-", out)
    data = json.loads(out.getvalue())
    assert data["plans"][0]["cases"][1]["reason"] == "got \udcff from the server"
    assert data["plans"][0]["cases"][0]["steps"][0]["details"] == {"250": "a key that is not a string"}
    assert data["counts"] == {"passed": 2, "failed": 1, "skipped": 1}
    assert data["plans"][1]["cases"] == []


def test_a_case_ended_twice_is_written_once_and_strangers_are_ignored(tmp_path):
    run = two_plans()
    plan = run.plans[0]
    stream = JsonStream(tmp_path / "r.json")
    stream.add(plan, plan.cases[0])
    stream.add(plan, plan.cases[0])
    stream.add(plan, replace(passing_case("not of this plan"), position=99))
    stream.write(run, tmp_path / "r.json")
    assert [c["name"] for c in json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"]] == \
        ["a", "b", "needs TLS", "d"]


def test_a_folder_that_is_gone_is_said_in_words(tmp_path):
    run = two_plans()
    stream = JsonStream(tmp_path / "gone" / "r.json")
    stream.add(run.plans[0], run.plans[0].cases[0])
    with pytest.raises(ReportError, match=r"cannot write the JSON report .*gone/r.json: No such file or directory"):
        stream.write(run, tmp_path / "gone" / "r.json")
