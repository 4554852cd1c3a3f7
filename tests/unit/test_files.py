"""Files a plan names are opened without blocking and must be regular files."""

from __future__ import annotations

import os
import threading

import pytest

from runner.errors import PlanError
from runner.files import open_regular
from runner.plan.load import load_file


def _refused(path: str) -> str:
    with pytest.raises(OSError) as info:
        open_regular(path)
    return info.value.strerror


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = threading.Event()
    outcome: list[str] = []

    def attempt() -> None:
        outcome.append(_refused(str(fifo)))
        done.set()

    threading.Thread(target=attempt, daemon=True).start()
    assert done.wait(5), "opening a FIFO blocked"
    assert outcome == ["a named pipe (FIFO), not a regular file"]


def test_devices_directories_loops_and_nul_bytes_are_named(tmp_path):
    loop_a, loop_b = tmp_path / "a", tmp_path / "b"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    assert _refused("/dev/null") == "a character device, not a regular file"
    assert _refused(str(tmp_path)) == "a directory, not a regular file"
    assert "symlink loop" in _refused(str(loop_a))
    assert _refused("a\0b") == "the path contains a NUL byte"


def test_a_regular_file_reads_as_usual(tmp_path):
    path = tmp_path / "body.txt"
    path.write_bytes(b"Subject: hi\r\n\r\nbody\r\n")
    with open_regular(path) as fh:
        assert fh.read() == b"Subject: hi\r\n\r\nbody\r\n"


def test_a_plan_that_is_a_fifo_is_a_plan_error_with_its_location(tmp_path):
    fifo = tmp_path / "plan.yaml"
    os.mkfifo(fifo)
    with pytest.raises(PlanError) as info:
        load_file(fifo)
    assert str(info.value) == f"{fifo}:1:1: error: cannot read plan: a named pipe (FIFO), not a regular file"
