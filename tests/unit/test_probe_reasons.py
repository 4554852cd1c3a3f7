"""The exporter's failure reasons where no server is needed: a probe that never ran, a run that stopped, a defect."""

from __future__ import annotations

from datetime import datetime, timezone

from runner.results import FAILED, SKIPPED, CaseResult, PlanResult, RunResult, StepResult
from runner.tools.probe_reasons import REASONS, Failure, failures


def run_of(*cases: CaseResult, interrupted: bool = False, errors: tuple[str, ...] = ()) -> RunResult:
    plan = PlanResult("p", "p.yaml", "", "127.0.0.1:25", cases=list(cases))
    return RunResult("0", datetime.now(timezone.utc), [plan], interrupted=interrupted, errors=list(errors))


def test_a_probe_whose_time_ran_out_before_the_plan_began_timed_out():
    assert failures(None) == [Failure("", 0, "timeout")]


def test_a_run_stopped_before_any_case_could_fail_timed_out_and_a_defect_is_an_error():
    waiting = CaseResult("queued", status=SKIPPED, steps=[StepResult(1, 3, "expect", "read a reply", SKIPPED)])
    assert failures(run_of(waiting, interrupted=True)) == [Failure("", 0, "timeout")]
    assert failures(run_of(waiting, errors=("internal error: KeyError",))) == [Failure("", 0, "error")]


def test_a_case_cut_by_the_end_of_the_probe_before_it_connected_timed_out():
    cut = CaseResult("c", status=FAILED, steps=[StepResult(1, 3, "expect", "read a reply", SKIPPED)])
    assert failures(run_of(cut, interrupted=True)) == [Failure("c", 0, "timeout")]
    assert failures(run_of(cut)) == [Failure("c", 0, "connect")]  # no plan: no MX to blame


def test_the_reasons_are_a_closed_set_of_label_values():
    assert len(set(REASONS)) == len(REASONS) and all(r.isidentifier() and r.islower() for r in REASONS)
