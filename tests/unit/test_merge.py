"""runner/tools/merge.py's command line: which errors are the command line's and which stop a merge.

Shards merged from real runs are in tests/integration/test_fleet.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        ((), "the following arguments are required: RESULT.json"),
        (("one.json", "--json"), "argument --json: expected one argument"),
    ],
)
def test_a_command_line_error_is_said_once_and_nothing_more(argv: tuple[str, ...], said: str) -> None:
    assert run("merge", *argv) == (2, "", f"smtprun merge: {said}\n")


def test_results_that_cannot_be_read_are_each_named_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "hello.json").write_text("hello\n")
    code, out, err = run("merge", str(tmp_path / "hello.json"), str(tmp_path / "gone.json"),
                         "--report-dir", str(tmp_path / "reports"))
    assert (code, out) == (2, "")
    assert err == (f"smtprun merge: {tmp_path / 'hello.json'}:1:1: not valid JSON: Expecting value\n"
                   f"smtprun merge: {tmp_path / 'gone.json'}: cannot read: No such file or directory\n"
                   "smtprun merge: nothing was written\n")
    assert not (tmp_path / "reports").exists()
