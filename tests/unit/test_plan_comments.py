"""The variables a library plan's header lists are the ones it reads: a user copying them gets no usage error."""

from __future__ import annotations

import re

import pytest

from runner.plan import read_plan
from tests.support.cli import ROOT


def _listed(text: str) -> list[str]:
    """The names of the header's `Variables` block: `#   name[, name]   what it is` lines after it."""
    names, inside = [], False
    for line in text.splitlines():
        if line.startswith("# Variables"):
            inside = True
        elif inside and (m := re.match(r"#   ([a-z_]+(?:, [a-z_]+)*)\s{2,}", line)):
            names += m.group(1).split(", ")
        elif inside and not line.startswith("#     "):
            break
    return names


@pytest.mark.parametrize("name", ["outbound.yaml", "roundtrip.yaml"])
def test_every_variable_in_the_header_is_one_the_plan_reads(name):
    path = ROOT / "plans" / name
    listed = _listed(path.read_text())
    assert len(listed) >= 5
    assert sorted(set(listed) - read_plan(path).names) == []
