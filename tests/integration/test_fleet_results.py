"""A large fleet's results as a user gets them: the --json file written as the cases end, complete and agreeing
with the console; what Ctrl-C leaves; the HTML page listing every case; shards of it merged."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

from tests.support.cli import ROOT, run_process, write_plan
from tests.support.fleetserver import FleetServer
from tests.support.monitoring import dead_port

# 30 matrix values × 40 targets: 1,200 cases in one plan, beyond the 1,000 a page shows whole
PLAN = """\
name: fleet
target: {port: 25, timeout: 10}
matrix: {n: [VALUES]}
cases:
  - name: "banner {{ n }}"
    steps:
      - expect: 220
      - send: "EHLO client{{ n }}.test"
        expect: 250
      - send: QUIT
        expect: 221
""".replace("VALUES", ", ".join(str(n) for n in range(1, 31)))


def smtprun(*argv: str) -> subprocess.CompletedProcess[str]:
    return run_process(*argv, timeout=120)


def summary(out: str) -> dict[str, int]:
    """The counts of the console's summary line (`1140 passed, 60 failed in 3.20s`)."""
    line = [x for x in out.splitlines() if re.match(r"\d+ passed", x)][-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped)", line)}


def test_a_fleet_json_is_complete_in_plan_order_and_agrees_with_the_console(tmp_path):
    with FleetServer(answering=36) as fleet, dead_port() as d1, dead_port() as d2, dead_port() as d3, \
            dead_port() as d4:
        dead = [f"127.0.0.1:{port}" for port in (d1, d2, d3, d4)]
        targets = [*fleet.targets[:18], *dead[:2], *fleet.targets[18:], *dead[2:]]
        (tmp_path / "t.txt").write_text("".join(f"{t}\n" for t in targets))
        plan = write_plan(tmp_path, PLAN)
        done = smtprun(plan, "--targets", str(tmp_path / "t.txt"), "--json", str(tmp_path / "r.json"),
                       "--report-dir", str(tmp_path / "html"), "--jobs", "50")
    assert done.returncode == 1, done.stderr
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    cases = data["plans"][0]["cases"]
    assert len(cases) == 1200
    assert [c["position"] for c in cases] == list(range(1200)), "in the plan's order, not the order they ended"
    assert [c["name"] for c in cases[:2]] == [f"banner 1 @ {targets[0]}", f"banner 2 @ {targets[0]}"]
    counted = {s: sum(c["status"] == s for c in cases) for s in ("passed", "failed", "skipped")}
    assert counted == data["counts"] == {"passed": 1080, "failed": 120, "skipped": 0}
    assert summary(done.stdout) == {"passed": 1080, "failed": 120}
    assert done.stdout.count("\nPASS  ") + done.stdout.startswith("PASS  ") == 1080
    assert all(len(c["transcript"]) >= 6 and c["steps"][1]["reply"]["code"] == 250
               for c in cases if c["status"] == "passed"), "every passing case whole in the JSON"
    refused = [c for c in cases if c["status"] == "failed"]
    assert {c["target"] for c in refused} == set(dead)
    assert all(c["reason"].endswith("Connection refused") and c["transcript"] for c in refused)

    page = next((tmp_path / "html").glob("plan-*.html")).read_text(encoding="utf-8")
    passed = page[page.index('id="passed"'):]
    passed = passed[:passed.index("</table>")]
    assert all(f"<td>{c['name']}</td>" in passed for c in cases if c["status"] == "passed")
    failed = page[page.index('<table class="rows failed">'):]
    failed = failed[:failed.index("</table>")]
    for c in refused:  # each failure with its transcript: in its row, or in its case shown whole below
        row = failed[failed.index(f">{c['name']}<"):]
        row = row[:row.index("</tr>")]
        if "below</a>" in row:
            anchor = re.search(r'href="#(case-\d+)">below', row)[1]
            row = page[page.index(f'<details class="case failed" id="{anchor}"'):]
            row = row[:re.search(r'<details class="(case|source)', row[1:]).start()]
        assert f"connecting to {c['target']}" in row, c["name"]


def test_ctrl_c_leaves_a_valid_json_of_what_finished(tmp_path):
    with FleetServer(answering=38, silent=2) as fleet:
        (tmp_path / "t.txt").write_text("".join(f"{t}\n" for t in fleet.targets))
        plan = write_plan(tmp_path, PLAN.replace("timeout: 10", "timeout: 60"))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with subprocess.Popen([sys.executable, "-m", "runner", plan, "--targets", str(tmp_path / "t.txt"),
                               "--json", str(tmp_path / "r.json"), "--no-report", "--jobs", "20"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
            assert proc.stdout is not None
            passed_lines = 0
            for line in proc.stdout:  # the silent targets' sessions hold their slots: the run cannot end alone
                passed_lines += line.startswith("PASS  ")
                if passed_lines == 200:
                    proc.send_signal(signal.SIGINT)
                    break
            # what the line iterator has read ahead is in proc.stdout's buffer, which communicate() would skip
            # (it reads the pipe itself): read the rest through the same buffer
            rest = proc.stdout.read()
            err = proc.stderr.read() if proc.stderr is not None else ""
            proc.wait(timeout=60)
    assert proc.returncode == 130, err
    out = rest
    assert out.rstrip().endswith("(interrupted)")
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["interrupted"] is True
    cases = data["plans"][0]["cases"]
    assert len(cases) == 1200 and [c["position"] for c in cases] == list(range(1200))
    counted = {s: sum(c["status"] == s for c in cases) for s in ("passed", "failed", "skipped")}
    assert counted == data["counts"]
    told = summary(out)
    assert told["passed"] == counted["passed"] >= 200
    assert counted["passed"] == passed_lines + (out.count("\nPASS  ") + out.startswith("PASS  "))
    assert {c["reason"] for c in cases if c["status"] == "skipped"} == {"interrupted before it started"}
    assert all(c["transcript"] for c in cases if c["status"] == "passed")


def test_streamed_shards_merge_into_the_whole_run(tmp_path):
    with FleetServer(answering=40) as fleet:
        (tmp_path / "t.txt").write_text("".join(f"{t}\n" for t in fleet.targets))
        plan = write_plan(tmp_path, PLAN)
        shards = [tmp_path / f"shard-{k}.json" for k in (1, 2)]
        for k, path in enumerate(shards, 1):
            done = smtprun(plan, "--targets", str(tmp_path / "t.txt"), "--shard", f"{k}/2", "--json", str(path),
                           "--no-report", "--jobs", "50")
            assert done.returncode == 0, done.stderr
    done = smtprun("merge", *map(str, shards), "--json", str(tmp_path / "all.json"), "--no-report")
    assert done.returncode == 0, done.stderr
    assert "1200 passed, 0 failed, 0 skipped" in done.stdout
    merged = json.loads((tmp_path / "all.json").read_text(encoding="utf-8"))["plans"][0]["cases"]
    assert [c["position"] for c in merged] == list(range(1200))
    assert all(len(c["transcript"]) >= 6 for c in merged)
