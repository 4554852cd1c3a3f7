"""The pytest plugin: plans collected as tests, run against the embedded server, reported like the CLI."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

FAILING_PLAN = """\
name: recipients
vars:
  helo: client.example.com
cases:
  - name: known recipient
    steps:
      - expect: 220
      - send: "EHLO {{ helo }}"
        expect: 250
      - send: QUIT
        expect: 221
  - name: unknown recipient
    steps:
      - expect: 220
      - send: "EHLO {{ helo }}"
        expect: 250
      - send: "MAIL FROM:<sender@example.com>"
        expect: 250
      - send: "RCPT TO:<unknown@example.com>"
        expect: 250
      - send: QUIT
        expect: 221
"""
FAILING_LINE = 19  # the RCPT TO step above

INVALID_PLAN = """\
name: typo
steps:
  - expect: 220
  - sned: "EHLO client.example.com"
    expect: 250
"""


def _installed() -> bool:
    return any(ep.name == "smtprun" for ep in importlib.metadata.entry_points(group="pytest11"))


# Loaded through the entry point once smtprun is installed; named explicitly before that.
PLUGIN = () if _installed() else ("-p", "runner.tools.pytest_plugin")


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A directory with plans/exchange.yaml, plans/recipients.yaml and plans/typo.yaml."""
    # xdist workers are new processes: they must find the runner package too.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    plans = pytester.mkdir("plans")
    shutil.copy(ROOT / "plans" / "exchange.yaml", plans / "exchange.yaml")
    (plans / "recipients.yaml").write_text(FAILING_PLAN)
    (plans / "typo.yaml").write_text(INVALID_PLAN)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """The inner run in file order even when this suite runs in a random one (pytest-randomly is a
    plugin of the whole interpreter, so the inner session would load it too)."""
    return pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider", "-p", "no:randomly", *args)


def test_each_case_of_a_plan_is_a_test(project: pytest.Pytester) -> None:
    result = run(project, "--smtprun", "plans/exchange.yaml", "--smtprun-embedded", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "plans/exchange.yaml::basic test PASSED*",
        "plans/exchange.yaml::advanced test (delivery receipt) PASSED*",
    ])


def test_a_failing_case_shows_its_step_and_transcript_not_a_traceback(project: pytest.Pytester) -> None:
    result = run(project, "--smtprun", "plans/recipients.yaml", "--smtprun-embedded")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        f"*step 4 at plans/recipients.yaml:{FAILING_LINE}: send RCPT TO:<unknown@example.com>",
        "*expected: 250",
        "*got:      550 5.1.1*",
        "*why:*",
        "transcript:",
        "*C: RCPT TO:<unknown@example.com>",
        "*S! 550 5.1.1*",  # a 5xx reply, marked
        "FAILED plans/recipients.yaml::unknown recipient - step 4 *",
    ])
    assert "Traceback" not in result.stdout.str()
    assert "runner/" not in result.stdout.str()  # no frames from smtprun's own code


def test_an_invalid_plan_is_one_collection_error_in_compiler_style(project: pytest.Pytester) -> None:
    result = run(project, "--smtprun", "plans/typo.yaml", "--smtprun-embedded")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR collecting plans/typo.yaml*",
        "plans/typo.yaml:4:5: error: unknown key 'sned' in step",
        '      - sned: "EHLO client.example.com"',
        "        ^",
        "    hint: did you mean 'send'?",
    ])
    assert "Traceback" not in result.stdout.str()
    assert "PlanError" not in result.stdout.str()


def test_a_directory_of_plans_and_smtp_yaml_files_are_collected(project: pytest.Pytester) -> None:
    (project.path / "plans" / "typo.yaml").unlink()
    (project.path / "plans" / "greeting.yaml").write_text("- expect: 220\n")  # a file to include: no plan
    project.mkdir("checks")
    (project.path / "checks" / "banner.smtp.yaml").write_text("steps:\n  - expect: 220\n  - send: QUIT\n"
                                                              "    expect: 221\n")
    result = run(project, "--smtprun", "plans", "--smtprun-embedded", "--collect-only", "-q")
    result.stdout.fnmatch_lines_random([
        "checks/banner.smtp.yaml::banner.smtp",
        "plans/exchange.yaml::basic test",
        "plans/exchange.yaml::advanced test (delivery receipt)",
        "plans/recipients.yaml::known recipient",
        "plans/recipients.yaml::unknown recipient",
    ])
    assert "5 tests collected" in result.stdout.str()


def test_vars_and_host_come_from_the_command_line(project: pytest.Pytester) -> None:
    # A plan with no target host runs against --smtprun-host/--smtprun-port; --smtprun-var overrides vars.
    from runner.tools.server import EmbeddedServer

    (project.path / "plans" / "bare.yaml").write_text(
        "vars: {rcpt: bob@example.com}\n"
        "steps:\n"
        "  - expect: 220\n"
        "  - send: EHLO client.example.com\n    expect: 250\n"
        "  - send: 'MAIL FROM:<a@example.com>'\n    expect: 250\n"
        "  - send: 'RCPT TO:<{{ rcpt }}>'\n    expect: 250\n")
    with EmbeddedServer() as server:
        passed = run(project, "--smtprun", "plans/bare.yaml", "--smtprun-host", server.host,
                     "--smtprun-port", str(server.port))
        failed = run(project, "--smtprun", "plans/bare.yaml", "--smtprun-host", server.host,
                     "--smtprun-port", str(server.port), "--smtprun-var", "rcpt=nosuchuser@example.com")
    passed.assert_outcomes(passed=1)
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*C: RCPT TO:<nosuchuser@example.com>"])


def test_a_plan_without_a_host_says_how_to_give_one(project: pytest.Pytester) -> None:
    (project.path / "plans" / "bare.yaml").write_text("steps:\n  - expect: 220\n")
    result = run(project, "--smtprun", "plans/bare.yaml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["no target host for plans/bare.yaml: *--smtprun-host or --smtprun-embedded"])


def test_junit_xml_has_one_testcase_per_case(project: pytest.Pytester) -> None:
    result = run(project, "--smtprun", "plans/exchange.yaml", "--smtprun", "plans/recipients.yaml",
                 "--smtprun-embedded", "--junitxml=results.xml")
    result.assert_outcomes(passed=3, failed=1)
    cases = ET.parse(project.path / "results.xml").getroot().iter("testcase")
    by_name = {case.get("name"): case for case in cases}
    assert sorted(by_name) == ["advanced test (delivery receipt)", "basic test", "known recipient",
                               "unknown recipient"]
    failure = by_name["unknown recipient"].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert message.startswith("step 4 (") and "expected 250, got 550" in message
    assert "C: RCPT TO:<unknown@example.com>" in (failure.text or "")
    peers = [p.get("value") for p in by_name["basic test"].iter("property") if p.get("name") == "peer"]
    assert peers and peers[0].startswith("127.0.0.1:")


@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed")
def test_runs_under_xdist(project: pytest.Pytester) -> None:
    result = run(project, "-n", "2", "--smtprun", "plans/exchange.yaml", "--smtprun", "plans/recipients.yaml",
                 "--smtprun-embedded")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([f"*step 4 at plans/recipients.yaml:{FAILING_LINE}: send RCPT TO:*"])
    assert "Traceback" not in result.stdout.str()


def test_conditions_and_retries_work_as_on_the_command_line(project: pytest.Pytester) -> None:
    (project.path / "plans" / "flow.yaml").write_text("""\
name: flow
cases:
  - name: never
    when: "1 > 2"
    steps:
      - expect: 220
  - name: retried
    retry: {times: 1}
    steps:
      - expect: 554
""")
    result = run(project, "--smtprun", "plans/flow.yaml", "--smtprun-embedded")
    result.assert_outcomes(skipped=1, failed=1)
    result.stdout.fnmatch_lines(["*failed all 2 tries*"])


def test_a_mistyped_smtprun_var_is_a_usage_error(project: pytest.Pytester) -> None:
    result = run(project, "--smtprun", "plans/exchange.yaml", "--smtprun-embedded", "--smtprun-var", "rctp=a@b.test")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--smtprun-var rctp: no plan collected has a variable 'rctp' (did you mean 'rcpt'?)"])
    parallel = run(project, "--smtprun", "plans/exchange.yaml", "--smtprun-embedded", "--smtprun-var", "rctp=a@b.test",
                   "-n", "2")
    parallel.assert_outcomes(failed=2)  # an xdist worker cannot end the session: every case fails with it
    parallel.stdout.fnmatch_lines(["--smtprun-var rctp: no plan collected has a variable 'rctp' (did you mean*"])


def test_plan_warnings_reach_the_warnings_summary(project: pytest.Pytester) -> None:
    (project.path / "plans" / "loose.yaml").write_text("steps:\n  - send: 'MAIL FROM:a@b.test'\n")
    result = run(project, "--smtprun", "plans/loose.yaml", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*plans/loose.yaml:2:22: warning: MAIL FROM without angle brackets*",
                                 "*hint: write MAIL FROM:<a@b.test>; smtprun sends the line as written"])


def test_a_host_with_the_embedded_server_is_a_usage_error(project: pytest.Pytester) -> None:
    result = run(project, "--smtprun", "plans/exchange.yaml", "--smtprun-embedded", "--smtprun-host", "127.0.0.1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--smtprun-host cannot be given with --smtprun-embedded*"])


def test_smtprun_alone_runs_the_plans_not_the_projects_tests(project: pytest.Pytester) -> None:
    """`pytest --smtprun plans/x.yaml` in a project whose testpaths need extras it lacks: only the plans run."""
    (project.path / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    project.mkdir("tests")
    (project.path / "tests" / "conftest.py").write_text("import a_test_extra_that_is_not_installed\n")
    (project.path / "tests" / "test_code.py").write_text("def test_code():\n    pass\n")
    only_plans = run(project, "--smtprun", "plans/exchange.yaml", "--smtprun-embedded")
    only_plans.assert_outcomes(passed=2)
    with_tests = run(project, "--smtprun", "plans/exchange.yaml", "--smtprun-embedded", "tests")
    assert with_tests.ret != pytest.ExitCode.OK  # named, the tests are collected too (and their conftest fails)
