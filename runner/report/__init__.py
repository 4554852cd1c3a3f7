"""Reporters: HTML (one page per plan per run, plus an index), JUnit XML and JSON, all read from
the result model in runner.results.

The names below are loaded when first used, so that writing JSON or JUnit XML never loads the
template engine the HTML pages need.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["atomic_write", "rebuild_index", "write_html_reports", "write_json", "write_junit"]

_HOMES = {
    "atomic_write": "runner.report.outputs",
    "rebuild_index": "runner.report.archive",
    "write_html_reports": "runner.report.html",
    "write_json": "runner.report.jsonout",
    "write_junit": "runner.report.junit",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(home), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
