"""Reporters: HTML (one page per plan per run, plus an index), JUnit XML and JSON, all read from
the result model in runner.results."""

from runner.report.archive import atomic_write, rebuild_index
from runner.report.html import write_html_reports
from runner.report.jsonout import write_json
from runner.report.junit import write_junit

__all__ = ["atomic_write", "rebuild_index", "write_html_reports", "write_json", "write_junit"]
