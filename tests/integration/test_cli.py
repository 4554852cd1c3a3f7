"""The command line against real servers on loopback: exit statuses, output, what reaches the server."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.support.cli import ROOT, run, write_plan


def test_exchange_plan_passes_on_the_embedded_server(tmp_path):
    code, out, err = run("--embedded", str(ROOT / "plans/exchange.yaml"), "--report-dir", str(tmp_path))
    assert code == 0, out + err
    assert "PASS" in out and "basic test" in out and "advanced test" in out
    assert "2 passed in" in out
    report = [line for line in out.splitlines() if line.startswith("report: ")]
    assert report and Path(report[-1].split(": ", 1)[1]).exists()


@pytest.mark.parametrize("profile", ["default", "exchange", "postfix"])
def test_exchange_plan_passes_with_every_profile(tmp_path, profile):
    code, out, err = run("--embedded", "--profile", profile, str(ROOT / "plans/exchange.yaml"), "--no-report")
    assert code == 0, out + err


def test_wrong_expectation_fails_with_step_and_line(tmp_path, embedded):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, timeout: 5}
steps:
  - expect: 220
  - send: EHLO test.com
    expect: 250
  - send: "MAIL FROM:<a@test.com>"
    expect: 354
""")
    code, out, _ = run(plan, "--port", str(embedded.port), "--no-report")
    assert code == 1
    assert f"step 3 at {plan}:6" in out
    assert "expected: 354" in out and "got:      250" in out
    assert "0 passed, 1 failed" in out


def test_plan_with_a_typo_exits_2_and_sends_nothing(tmp_path, silent):
    plan = write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, port: {silent.port}}}
steps:
  - expect: 220
  - sned: EHLO test.com
    expect: 250
""")
    code, _, err = run(plan, "--no-report")
    assert code == 2
    assert f"{plan}:4:5: error: unknown key 'sned' in step" in err
    assert "did you mean 'send'?" in err
    assert "nothing was sent" in err
    time.sleep(0.2)
    assert silent.accepted == 0


def test_one_bad_plan_stops_every_plan(tmp_path, silent):
    good = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {silent.port}}}\nsteps:\n  - expect: 220\n",
                      "a.yaml")
    bad = write_plan(tmp_path, "steps:\n  - expect: 2yy\n", "b.yaml")
    code, _, err = run(good, bad, "--no-report")
    assert code == 2 and "b.yaml:2:13" in err
    time.sleep(0.2)
    assert silent.accepted == 0


def test_silent_server_fails_the_case_within_its_timeout(tmp_path, silent):
    plan = write_plan(tmp_path,
                      f"target: {{host: 127.0.0.1, port: {silent.port}, timeout: 1}}\nsteps:\n  - expect: 220\n")
    t0 = time.monotonic()
    code, out, _ = run(plan, "--no-report")
    elapsed = time.monotonic() - t0
    assert code == 1
    assert "no reply within 1s" in out
    assert 0.9 < elapsed < 2.0


def test_refused_connection_fails_the_case(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {port}, timeout: 2}}\nsteps:\n  - expect: 220\n")
    code, out, _ = run(plan, "--no-report")
    assert code == 1
    assert "cannot connect to 127.0.0.1" in out


def test_body_arrives_byte_identical_after_dot_stuffing(tmp_path, embedded):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, timeout: 5}
steps:
  - expect: 220
  - send: EHLO test.com
    expect: 250
  - send: "MAIL FROM:<a@test.com>"
    expect: 250
  - send: "RCPT TO:<b@test.com>"
    expect: 250
  - send: DATA
    expect: 354
  - data: "Subject: dots\\n\\n.\\n..x\\n.x\\nend\\n"
    expect: 250
  - send: QUIT
    expect: 221
""")
    code, out, err = run(plan, "--port", str(embedded.port), "--no-report")
    assert code == 0, out + err
    assert embedded.messages[-1].data == b"Subject: dots\r\n\r\n.\r\n..x\r\n.x\r\nend\r\n"


def test_captures_and_vars_flow_into_later_steps(tmp_path, embedded):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, timeout: 5}
vars: {helo: plan.example}
steps:
  - expect: 220
    capture: {banner_host: '^(\\S+)'}
  - send: "EHLO {{ helo }}"
    expect: 250
  - send: "NOOP {{ banner_host }} {{ ehlo.SIZE }} {{ 'SIZE' in ehlo }}"
    expect: 250
""")
    out_json = tmp_path / "r.json"
    code, out, err = run(plan, "--port", str(embedded.port), "--var", "helo=cli.example", "--json", str(out_json),
                         "--no-report")
    assert code == 0, out + err
    data = json.loads(out_json.read_text())
    case = data["plans"][0]["cases"][0]
    assert case["status"] == "passed"
    steps = case["steps"]
    assert steps[1]["sent"] == "EHLO cli.example"
    banner_host = steps[0]["reply"]["lines"][0].split()[0]
    assert steps[0]["captures"]["banner_host"] == banner_host
    size = embedded_size(steps[1]["reply"]["lines"])
    assert steps[2]["sent"] == f"NOOP {banner_host} {size} True"
    assert steps[2]["reply"]["code"] == 250
    assert [e["dir"] for e in case["transcript"]].count("C") == 2


def embedded_size(ehlo_lines: list[str]) -> str:
    return next(line.split()[1] for line in ehlo_lines if line.upper().startswith("SIZE"))


def test_expect_closed_and_per_step_timeout(tmp_path, embedded):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, timeout: 5}
cases:
  - name: quit closes
    steps:
      - expect: 220
      - send: QUIT
        expect: 221
      - expect: closed
  - name: server stays open
    steps:
      - expect: 220
      - expect: closed
        timeout: 0.3
""")
    code, out, _ = run(plan, "--port", str(embedded.port), "--no-report")
    assert code == 1
    assert any(line.startswith("PASS") and "quit closes" in line for line in out.splitlines())
    assert "expected the server to close the connection; it stayed open" in out
    assert "1 passed, 1 failed" in out


def test_verbose_prints_the_live_transcript(tmp_path, embedded):
    plan = write_plan(tmp_path, "target: {host: 127.0.0.1}\nsteps:\n  - expect: 220\n  - send: NOOP\n    expect: 250\n")
    code, out, _ = run(plan, "--port", str(embedded.port), "-v", "--no-report")
    assert code == 0
    assert "C: NOOP" in out and "S: 220 " in out and "S: 250" in out


def test_validate_command(tmp_path):
    assert run("validate", str(ROOT / "plans/exchange.yaml"))[0] == 0
    bad = write_plan(tmp_path, "steps: []\n")
    code, _, err = run("validate", bad)
    assert code == 2 and f"{bad}:1:8" in err


@pytest.mark.parametrize("argv", [["--port", "abc", "x.yaml"], ["--jobs", "0", "x.yaml"],
                                  ["--var", "novalue", "x.yaml"]])
def test_bad_command_line_exits_2(argv):
    code, _, err = run(*argv)
    assert code == 2 and "smtprun" in err


def test_missing_plan_file_exits_2(tmp_path):
    code, _, err = run(str(tmp_path / "nope.yaml"), "--no-report")
    assert code == 2 and "nope.yaml:1:1: error: cannot read plan" in err


def test_no_host_anywhere_is_a_usage_error(tmp_path):
    plan = write_plan(tmp_path, "steps:\n  - expect: 220\n")
    code, _, err = run(plan, "--no-report")
    assert code == 2 and "no target host" in err


def test_unwritable_json_path_is_refused_before_any_session(tmp_path, embedded):
    plan = write_plan(tmp_path, "target: {host: 127.0.0.1}\nsteps:\n  - expect: 220\n")
    code, out, err = run(plan, "--port", str(embedded.port), "--json", str(tmp_path / "no" / "dir" / "r.json"),
                         "--no-report")
    assert out == ""
    assert err == (f"smtprun: --json {tmp_path}/no/dir/r.json: cannot write there: its folder {tmp_path}/no/dir "
                   "does not exist\n")
    assert code == 2


def test_python_dash_m_runner_works():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "runner", "validate", str(ROOT / "plans/exchange.yaml")],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "exchange.yaml: ok (2 cases)" in proc.stdout


def test_serve_on_a_port_in_use_says_so(silent):
    code, _, err = run("serve", "--port", str(silent.port))
    assert code == 3
    assert f"cannot listen on 127.0.0.1:{silent.port}" in err and "address already in use" in err


@pytest.mark.parametrize(("flag", "parse"), [("--json", "json"), ("--junit", "xml")])
def test_machine_output_on_stdout_stays_parseable(flag, parse):
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    proc = subprocess.run([sys.executable, "-m", "runner", "--embedded", str(ROOT / "plans/exchange.yaml"),
                           "--no-report", flag, "-"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    if parse == "json":
        assert json.loads(proc.stdout)["counts"]["passed"] == 2
    else:
        assert ET.fromstring(proc.stdout).get("tests") == "2"
    assert "2 passed" in proc.stderr  # the human summary moved out of the way


@pytest.mark.parametrize("spelling", ["127.0.0.1:{port}", "[127.0.0.1]:{port}"])
def test_host_with_a_port(tmp_path, embedded, spelling):
    plan = write_plan(tmp_path, "steps:\n  - expect: 220\n")
    code, out, err = run(plan, "--host", spelling.format(port=embedded.port), "--no-report")
    assert code == 0, out + err


def test_validate_takes_the_variables_a_plan_expects(tmp_path):
    plan = write_plan(tmp_path, "steps:\n  - send: 'RCPT TO:<{{ rcpt }}>'\n")
    assert run("validate", plan)[0] == 2
    assert run("validate", plan, "--var", "rcpt=a@b.c")[0] == 0


def test_verbose_with_parallel_sessions_names_each_line(tmp_path, embedded):
    plan = write_plan(tmp_path, "cases:\n" + "".join(f"  - name: c{i}\n    steps:\n      - expect: 220\n"
                                                      for i in range(2)))
    code, out, _ = run(plan, "--port", str(embedded.port), "--host", "127.0.0.1", "-v", "-j", "2", "--no-report")
    assert code == 0
    assert "[c0] S: 220" in out and "[c1] S: 220" in out


def test_verbose_names_each_line_of_one_case_run_against_several_targets(tmp_path, embedded):
    plan = write_plan(tmp_path, "name: c\nsteps:\n  - expect: 220\n")
    (tmp_path / "fleet.txt").write_text(f"127.0.0.1:{embedded.port}\n127.0.0.1:9\n")
    code, out, _ = run(plan, "--targets", str(tmp_path / "fleet.txt"), "-v", "--no-report")
    assert code == 1
    assert f"[c @ 127.0.0.1:{embedded.port}] S: 220" in out and "[c @ 127.0.0.1:9] * connecting to" in out
