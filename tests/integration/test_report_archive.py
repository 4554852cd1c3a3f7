"""The report folder as people keep it: edited, damaged and odd files never stop a run from being reported."""

from __future__ import annotations

import os
import re

import pytest

from tests.support.cli import run, write_plan

PLAN = "target: {host: 127.0.0.1, timeout: 5}\nsteps:\n  - expect: 220\n"


def first_run(tmp_path, embedded):
    plan = write_plan(tmp_path, PLAN)
    reports = tmp_path / "reports"
    code, out, err = run(plan, "--port", str(embedded.port), "--report-dir", str(reports))
    assert code == 0, out + err
    [report] = reports.glob("plan-*.html")
    return plan, reports, report


@pytest.mark.parametrize(("block", "pattern", "replacement"), [
    ("smtprun-data", r'"started_at": ?"[^"]+"', '"started_at": "garbage"'),
    ("smtprun-data", r'"name": ?"plan"', '"name": 123'),
    ("smtprun-data", r'"cases": ?\[', '"cases": 5, "x": ['),
    ("smtprun-summary", r'"duration": ?[0-9.e-]+', '"duration": NaN'),
])
def test_a_damaged_earlier_report_is_a_warning_not_a_crash(tmp_path, embedded, block, pattern, replacement):
    plan, reports, report = first_run(tmp_path, embedded)
    text = report.read_text()
    start = text.index(f'id="{block}"')
    end = text.index("</script>", start)
    edited = re.sub(pattern, replacement, text[start:end], count=1)
    assert edited != text[start:end], "the edit must take"
    report.write_text(text[:start] + edited + text[end:])
    code, out, err = run(plan, "--port", str(embedded.port), "--report-dir", str(reports))
    assert code == 0, out + err
    assert "Traceback" not in err
    assert len(list(reports.glob("plan-*.html"))) == 2
    assert (reports / "index.html").exists()


def test_a_fifo_or_a_link_in_the_report_folder_is_skipped(tmp_path, embedded):
    plan, reports, report = first_run(tmp_path, embedded)
    os.mkfifo(reports / "pipe.html")
    (reports / "link.html").symlink_to(report)
    code, out, err = run(plan, "--port", str(embedded.port), "--report-dir", str(reports))
    assert code == 0, out + err
    assert "pipe.html: skipped: not a regular file" in err and "link.html: skipped" in err
