"""A plan against a list of targets, split into shards run as separate processes, and merged into one report."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET

import pytest

from runner.report.archive import INDEX_NAME
from tests.support.cli import run, run_process, write_plan
from tests.support.monitoring import dead_port
from tests.support.mtas import EXIM, require_smtp

PLAN = """\
name: fleet
target: {port: 25, timeout: 5}
vars: {who: nobody}
matrix: {n: [1, 2, 3, 4, 5, 6]}
cases:
  - name: "banner {{ n }}"
    steps:
      - expect: 220
      - send: "EHLO {{ who }}.test"
        expect: 250
      - send: QUIT
        expect: 221
"""


def smtprun(*argv: str) -> subprocess.CompletedProcess[str]:
    return run_process(*argv, timeout=60)


def cases(path) -> dict[str, dict]:
    data = json.loads(path.read_text())
    return {c["name"]: c for p in data["plans"] for c in p["cases"]}


@pytest.fixture
def fleet(tmp_path, postfix):
    with dead_port() as port:
        targets = tmp_path / "targets.txt"
        targets.write_text(f"# the fleet\n127.0.0.1:25\n127.0.0.1:{port}   # nothing listens\n")
        yield write_plan(tmp_path, PLAN), str(targets), port


def test_each_target_is_its_own_case_in_every_report(tmp_path, fleet):
    plan, targets, port = fleet
    code, out, _ = run(plan, "--targets", targets, "--json", str(tmp_path / "r.json"),
                       "--junit", str(tmp_path / "r.xml"), "--report-dir", str(tmp_path / "html"))
    assert code == 1
    found = cases(tmp_path / "r.json")
    assert sorted(found) == sorted([f"banner {n} @ 127.0.0.1:25" for n in range(1, 7)] +
                                   [f"banner {n} @ 127.0.0.1:{port}" for n in range(1, 7)])
    assert {c["status"] for n, c in found.items() if n.endswith("@ 127.0.0.1:25")} == {"passed"}
    dead = found[f"banner 1 @ 127.0.0.1:{port}"]
    assert (dead["status"], dead["reason"]) == ("failed", f"cannot connect to 127.0.0.1:{port}: Connection refused")
    assert "6 passed, 6 failed" in out
    suite = ET.parse(tmp_path / "r.xml").getroot()
    names = {tc.get("name") for tc in suite.iter("testcase")}
    assert names == set(found)
    page = next((tmp_path / "html").glob("plan-*.html")).read_text()
    assert f"banner 6 @ 127.0.0.1:{port}" in page


def test_csv_columns_are_variables_of_their_target(tmp_path, postfix):
    require_smtp(EXIM)
    plan = write_plan(tmp_path, PLAN)
    listed = tmp_path / "fleet.csv"
    listed.write_text("target,who\n127.0.0.1:25,alice\n127.0.0.1:2525,bob\n")
    run(plan, "--targets", str(listed), "--json", str(tmp_path / "r.json"), "--no-report")
    found = cases(tmp_path / "r.json")
    sent = {name: [e["data"] for e in c["transcript"] if e["dir"] == "C" and e["data"].startswith("EHLO")]
            for name, c in found.items()}
    assert sent["banner 1 @ 127.0.0.1:25"] == ["EHLO alice.test\\r\\n"]
    assert sent["banner 1 @ 127.0.0.1:2525"] == ["EHLO bob.test\\r\\n"]


def test_shards_in_separate_processes_cover_every_case_once_and_merge(tmp_path, fleet):
    plan, targets, _ = fleet
    shards = [tmp_path / f"shard-{k}.json" for k in (1, 2, 3)]
    for k, path in enumerate(shards, 1):
        done = smtprun(plan, "--targets", targets, "--shard", f"{k}/3", "--json", str(path), "--no-report")
        assert done.returncode in (0, 1), done.stderr
    parts = [set(cases(p)) for p in shards]
    assert sum(map(len, parts)) == 12 and len(set.union(*parts)) == 12
    assert [json.loads(p.read_text())["shard"] for p in shards] == [{"index": k, "total": 3} for k in (1, 2, 3)]

    report = tmp_path / "merged"
    done = smtprun("merge", *map(str, shards), "--report-dir", str(report),
                   "--json", str(tmp_path / "all.json"), "--junit", str(tmp_path / "all.xml"))
    assert done.returncode == 1, done.stderr
    version = json.loads(shards[0].read_text())["smtprun"]
    assert done.stdout.endswith(f"merged 3 results (smtprun {version}): 6 passed, 6 failed, 0 skipped\n")
    whole = tmp_path / "whole.json"
    assert smtprun(plan, "--targets", targets, "--json", str(whole), "--no-report").returncode == 1
    assert list(cases(tmp_path / "all.json")) == list(cases(whole))  # in the target list's order, not by shard
    suite = ET.parse(tmp_path / "all.xml").getroot()
    assert len(list(suite.iter("testcase"))) == 12
    pages = list(report.glob("plan-*.html"))
    assert len(pages) == 1
    assert pages[0].name in (report / INDEX_NAME).read_text()


def test_merge_refuses_bad_inputs_and_writes_nothing(tmp_path, fleet):
    plan, targets, _ = fleet
    one = tmp_path / "one.json"
    smtprun(plan, "--targets", targets, "--shard", "1/2", "--json", str(one), "--no-report")
    other = tmp_path / "other.json"
    smtprun(plan, "--targets", targets, "--shard", "1/3", "--json", str(other), "--no-report")
    data = json.loads(one.read_text())
    truncated = tmp_path / "truncated.json"
    truncated.write_text(one.read_text()[: len(one.read_text()) // 2])
    older = tmp_path / "older.json"
    older.write_text(json.dumps({**data, "smtprun": "0.0.1", "shard": {"index": 2, "total": 2}}))
    report = tmp_path / "report"
    for files, message in [
        ((one, one), f"smtprun merge: {one} and {one} are both shard 1/2: give each shard once"),
        ((one, other), f"smtprun merge: shards of different splits: {one} is one of 2, {other} is one of 3"),
        ((one, older), f"smtprun merge: results from different smtprun versions cannot be merged: "
                       f"{one} from smtprun {data['smtprun']}, {older} from smtprun 0.0.1"),
    ]:
        code, out, err = run("merge", *map(str, files), "--report-dir", str(report), "--json", str(tmp_path / "m.json"))
        assert (code, out, err) == (2, "", message + "\nsmtprun merge: nothing was written\n")
    code, out, err = run("merge", str(one), str(truncated), "--report-dir", str(report))
    assert code == 2
    first = err.splitlines()[0]
    assert first.startswith(f"smtprun merge: {truncated}:") and first.endswith("(the file ends too early: truncated?)")
    assert not report.exists() and not (tmp_path / "m.json").exists()
    (tmp_path / "hello.json").write_text("hello\n")
    code, _, err = run("merge", str(one), str(tmp_path / "hello.json"))
    assert code == 2
    assert err.splitlines()[0] == f"smtprun merge: {tmp_path / 'hello.json'}:1:1: not valid JSON: Expecting value"
    code, out, err = run("merge", str(one), "--report-dir", str(one))
    assert (code, out, err) == (2, "", f"smtprun merge: --report-dir {one}: cannot write there: not a folder\n"
                                       "smtprun merge: nothing was written\n")


def test_a_shard_with_no_cases_says_so(tmp_path, postfix):
    plan = write_plan(tmp_path, PLAN.replace("[1, 2, 3, 4, 5, 6]", "[1]"))
    targets = tmp_path / "one.txt"
    targets.write_text("127.0.0.1:25\n")
    said = []
    for k in (1, 2, 3, 4):
        code, out, err = run(plan, "--targets", str(targets), "--shard", f"{k}/4", "--no-report")
        assert code == 0, err
        said.append("PASS" in out)
        assert (f"smtprun: shard {k}/4 holds none of the cases, so nothing ran" in err) == ("PASS" not in out)
    assert said.count(True) == 1
