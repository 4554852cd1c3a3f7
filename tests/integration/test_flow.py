"""Writing plans: includes, matrices, conditions, retries, finally, going on after failures, load mode."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run, write_plan


def cases_of(path: Path) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(path.read_text())["plans"][0]["cases"]}


def test_include_with_parameters_and_defaults(tmp_path, embedded):
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "hello.yaml").write_text("""\
vars: {helo: default.test, greeting: EHLO}
steps:
  - expect: 220
  - send: "{{ greeting }} {{ helo }}"
    expect: 250
""")
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, timeout: 5}
vars: {helo: plan.test}
cases:
  - name: plan var beats the file default
    steps:
      - include: common/hello.yaml
  - name: include vars beat the plan
    steps:
      - include: common/hello.yaml
        vars: {helo: "param-{{ helo }}"}
      - send: QUIT
        expect: 221
""")
    code, out, err = run(plan, "--port", str(embedded.port), "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    cases = cases_of(tmp_path / "r.json")
    assert cases["plan var beats the file default"]["steps"][1]["sent"] == "EHLO plan.test"
    second = cases["include vars beat the plan"]["steps"]
    assert second[1]["sent"] == "EHLO param-plan.test"
    assert second[1]["file"].endswith("common/hello.yaml") and second[1]["line"] == 4
    assert second[2]["file"].endswith("plan.yaml")


def test_errors_point_into_the_included_file(tmp_path):
    (tmp_path / "inc.yaml").write_text("steps:\n  - expect: 220\n  - sned: NOOP\n")
    plan = write_plan(tmp_path, "steps:\n  - expect: 220\n  - include: inc.yaml\n")
    code, _, err = run("validate", plan)
    assert code == 2
    assert f"{tmp_path / 'inc.yaml'}:3:5: error: unknown key 'sned' in step" in err
    assert f"note: included from {plan}:3" in err


def test_include_cycle_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("steps:\n  - include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("steps:\n  - include: a.yaml\n")
    code, _, err = run("validate", str(tmp_path / "a.yaml"))
    assert code == 2 and "include cycle" in err


def test_matrix_runs_each_combination_named_after_its_values(tmp_path, embedded):
    plan = write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, port: "{{{{ port }}}}", timeout: 5}}
matrix: {{port: [{embedded.port}]}}
cases:
  - name: hello
    matrix: {{helo: [a.test, b.test]}}
    steps:
      - expect: 220
      - send: "EHLO {{{{ helo }}}}"
        expect: 250
""")
    code, out, err = run(plan, "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    names = list(cases_of(tmp_path / "r.json"))
    assert names == [f"hello [port={embedded.port}, helo=a.test]", f"hello [port={embedded.port}, helo=b.test]"]


def test_when_skips_cases_and_steps_and_says_why(tmp_path, embedded):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, timeout: 5}
cases:
  - name: probe
    steps:
      - expect: 220
      - send: EHLO t
        expect: 250
  - name: only with STARTTLS
    when: "'STARTTLS' in ehlo"
    steps:
      - expect: 220
  - name: only with SIZE
    when: "'SIZE' in ehlo"
    steps:
      - expect: 220
      - send: NOOP
        when: "1 > 2"
        expect: 500
      - send: QUIT
        expect: 221
""")
    code, out, err = run(plan, "--port", str(embedded.port), "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    assert "2 passed, 1 skipped" in out
    cases = cases_of(tmp_path / "r.json")
    assert cases["only with STARTTLS"]["status"] == "skipped"
    assert "when \"'STARTTLS' in ehlo\" is false" in cases["only with STARTTLS"]["reason"]
    step = cases["only with SIZE"]["steps"][1]
    assert step["status"] == "skipped" and "1 > 2" in step["reason"]


def test_retry_reports_every_try_and_finally_still_runs(tmp_path, embedded):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, timeout: 5}
cases:
  - name: always wrong
    retry: {times: 2, delay: 0.05}
    steps:
      - expect: 220
      - send: NOOP
        expect: 550
    finally:
      - send: QUIT
        expect: 221
""")
    code, out, _ = run(plan, "--port", str(embedded.port), "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 1 and "failed all 3 tries" in out
    case = cases_of(tmp_path / "r.json")["always wrong"]
    assert len(case["attempts"]) == 2
    assert [s["status"] for s in case["steps"]] == ["passed", "failed", "passed"]
    assert case["steps"][2]["sent"] == "QUIT"


def test_continue_on_failure_gathers_every_fact(tmp_path, embedded):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, timeout: 5}
cases:
  - name: all facts
    continue_on_failure: true
    steps:
      - expect: 220
      - send: NOOP
        expect: 550
      - send: "VRFY postmaster"
        expect: 252
""")
    code, _, _ = run(plan, "--port", str(embedded.port), "--json", str(tmp_path / "r.json"), "--no-report")
    steps = cases_of(tmp_path / "r.json")["all facts"]["steps"]
    assert code == 1
    assert steps[1]["status"] == "failed" and steps[2]["status"] in ("passed", "failed")
    assert steps[2]["reply"] is not None  # it ran after the failure


def test_load_mode_reports_figures_and_keeps_few_transcripts(tmp_path, embedded):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, timeout: 5}
steps:
  - expect: 220
  - send: NOOP
    expect: 250
  - send: QUIT
    expect: 221
""")
    code, out, err = run(plan, "--port", str(embedded.port), "--repeat", "200", "--jobs", "10",
                         "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    assert "200 sessions in" in out
    [case] = cases_of(tmp_path / "r.json").values()
    load = case["load"]
    assert load["sessions"] == load["passed"] == 200 and load["failed"] == 0
    assert [s["count"] for s in load["steps"]] == [200, 200, 200]
    assert all(s["p50"] <= s["p90"] <= s["p99"] <= s["max"] for s in load["steps"])
    assert case["attempts"] == []  # no failing sessions to keep


def test_load_mode_keeps_five_failing_sessions_whole(tmp_path, embedded):
    plan = write_plan(tmp_path, "target: {host: 127.0.0.1, timeout: 5}\nsteps:\n  - expect: 554\n")
    code, out, _ = run(plan, "--port", str(embedded.port), "--repeat", "50", "--json", str(tmp_path / "r.json"),
                       "--no-report")
    assert code == 1 and "50 × expected 554, got 220" in out
    [case] = cases_of(tmp_path / "r.json").values()
    why = "expected 554, got 220 mail.smtprun.test smtprun ESMTP ready"
    assert case["load"]["failed"] == 50 and case["load"]["failures"] == {why: 50}
    # Five failing sessions are kept whole: the first is the case's own steps and transcript, four beside it.
    kept = [case, *case["attempts"]]
    assert len(kept) == 5
    assert [[(s["status"], s["reason"]) for s in k["steps"]] for k in kept] == [[("failed", why)]] * 5
    # each ends with the 220 that failed it, then the QUIT that closed the session
    assert all([e["data"][:4] for e in k["transcript"][-5:]] == ["220 ", "the ", "QUIT", "221 ", "clie"] for k in kept)
    assert [(a["status"], a["attempts"], a["load"]) for a in case["attempts"]] == [("failed", [], None)] * 4


def test_vars_built_from_matrix_values_are_rendered_per_case(tmp_path, embedded):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, timeout: 5}
vars: {greeting: "EHLO {{ helo }}"}
matrix: {helo: [a.test, b.test]}
steps:
  - expect: 220
  - send: "{{ greeting }}"
    expect: 250
""")
    code, out, err = run(plan, "--port", str(embedded.port), "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    sent = {name: case["steps"][1]["sent"] for name, case in cases_of(tmp_path / "r.json").items()}
    assert sent == {"plan [helo=a.test]": "EHLO a.test", "plan [helo=b.test]": "EHLO b.test"}
