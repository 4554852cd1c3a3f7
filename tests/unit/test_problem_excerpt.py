"""A compiler-style error shows a bounded excerpt of its source line, the caret still under the fault."""

from __future__ import annotations

from tests.support.cli import run


def test_a_huge_target_line_is_named_without_echoing_it_whole(tmp_path):
    plan = tmp_path / "p.yaml"
    plan.write_text("target: {host: 127.0.0.1}\nsteps:\n  - expect: 220\n")
    targets = tmp_path / "fleet.txt"
    targets.write_text("a" * 2_000_000 + "\n")
    code, _, err = run(str(plan), "--targets", str(targets), "--no-report")
    assert code == 2
    lines = err.splitlines()
    assert lines[0].startswith(f"{targets}:1:1: error: not a target: ")
    assert lines[1] == "    " + "a" * 120 + "..."
    assert lines[2] == "    ^"
    assert len(err) < 1000


def test_the_caret_stays_under_the_fault_in_a_long_plan_line(tmp_path):
    plan = tmp_path / "p.yaml"
    plan.write_text("target: {host: 127.0.0.1}\nsteps:\n  - {expect: 220, " + "name: " + "x" * 500 + ", sned: 1}\n")
    code, _, err = run("validate", str(plan))
    assert code == 2
    head, source, caret = err.splitlines()[:3]
    assert head.startswith(f"{plan}:3:") and "unknown key 'sned'" in head
    assert source.startswith("    ...") and len(source) <= 4 + 3 + 120 + 3
    assert source[caret.index("^"):].startswith("sned")
