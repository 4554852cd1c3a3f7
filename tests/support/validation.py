"""Plans with mistakes in them, read as `smtprun` reads a file: the problems it reports, as (where, message).

    assert only_problem(tmp_path, "steps:\n  - sendd: EHLO\n") == ("2:5", "unknown key 'sendd' in step")
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import PlanError
from runner.plan import read_plan

__all__ = ["only_problem", "problems", "write"]


def write(tmp_path: Path, text: str | bytes, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path, overrides: dict[str, str] | None = None) -> list[tuple[str, str, str | None]]:
    """(file:line:col, message, hint) of every problem read_plan reports; fails if the plan is accepted."""
    with pytest.raises(PlanError) as exc:
        read_plan(path, overrides)
    return [(str(p.location), p.message, p.hint) for p in exc.value.problems]


def only_problem(tmp_path: Path, text: str | bytes, overrides: dict[str, str] | None = None) -> tuple[str, str]:
    """The single problem of a plan, as (line:col, message); asserts there is exactly one."""
    path = write(tmp_path, text)
    found = problems(path, overrides)
    assert len(found) == 1, found
    where, message, _ = found[0]
    assert where.startswith(f"{path}:")
    return where.removeprefix(f"{path}:"), message
