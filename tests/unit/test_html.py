"""runner/report/html.py: the self-contained HTML page of a plan's run, as a user opens it.

What the server sent is escaped, the page runs only its own script and loads nothing, failed cases
are open, the transcript tells client from server, the run's data is embedded and reads back, and a
thousand cases are written quickly. The report folder and its index are tests/unit/test_reports.py's.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from pathlib import Path

import pytest

from runner.report import write_html_reports
from runner.report.archive import DATA_ID, read_embedded
from runner.report.html import plan_data
from tests.support.results import HOSTILE, failing_case, make_run, passing_case, standard_run
from tests.support.timing import cpu_seconds


@pytest.fixture
def page(tmp_path) -> str:
    return write_html_reports(standard_run(), tmp_path)[0].read_text(encoding="utf-8")


def test_page_escapes_what_the_server_sent(page):
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\x00" not in page
    assert "RCPT TO:&lt;victim@elsewhere.test&gt;\\x00\\r\\n" in page, "NUL and CRLF shown as escapes"
    assert "bad byte \\x00 in reason" in page


def test_page_runs_only_its_own_script_allowed_by_hash_and_loads_nothing(page):
    csp = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)[1])
    [own] = re.findall(r"<script>(.*?)</script>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(own.encode()).digest()).decode()
    # no 'unsafe-inline': a script that got into the page any other way would not run
    assert f"script-src 'sha256-{digest}';" in csp and "default-src 'none'" in csp
    assert page.count("<script") == 3 and page.count('<script type="application/json"') == 2
    for external in ("http://", "https://", "@import", "url(", "<link", "<img", "<iframe", " src="):
        assert external not in page


def test_expand_and_collapse_all_are_shown_only_by_the_pages_script(page):
    head = page[page.index('<div class="cases-head">'):page.index('id="case-1"')]
    assert '<div class="toggles" hidden>' in head, "without scripts there are no buttons that do nothing"
    assert '<button type="button" data-toggle="open">Expand all</button>' in head
    assert '<button type="button" data-toggle="close">Collapse all</button>' in head


def test_page_shows_summary_plan_target_and_peer(page):
    summary = page[page.index('id="summary"'):page.index('<h2>Cases')]
    assert '<span class="verdict failed">failed</span>' in summary
    for count, label in ((1, "passed"), (1, "failed"), (1, "skipped"), (3, "cases")):
        assert f'<div class="n">{count}</div><div class="l">{label}</div>' in summary
    for text in ("basic checks", "plans/basic.yaml", "mx.example.test:25", "192.0.2.25:25",
                 "2024-05-01 12:00:00 UTC", "0.021 s", "0.1.0"):  # both cases began at once: the longer one
        assert text in summary


def test_failed_case_is_open_and_passed_case_closed(page):
    assert '<details class="case failed" id="case-2" open>' in page
    assert '<details class="case passed" id="case-1">' in page
    assert '<details class="case skipped" id="case-3">' in page
    failed = page[page.index('id="case-2"'):page.index('id="case-3"')]
    box = failed[failed.index('class="failure"'):failed.index('class="facts"')]
    assert "Failed at step 2 (send)" in box and "plans/basic.yaml:11" in box
    assert "<dt>expected</dt><dd>250</dd>" in box
    assert "550 5.7.1 relaying denied &lt;script&gt;" in box


def test_transcript_tells_client_from_server_with_offsets(page):
    case = page[page.index('id="case-1"'):page.index('id="case-2"')]
    assert '<div class="r c"><span class="o">+0.005s</span><span class="d">C:</span>' in case
    assert '<div class="r s"><span class="o">+0.012s</span><span class="d">S:</span>' in case
    assert '<div class="r i"><span class="o">+0.000s</span><span class="d">*</span>' in case
    assert "250-PIPELINING\\r\\n" in case, "a multiline reply is shown one line per row"
    assert "TLS_AES_256_GCM_SHA384" in case


def test_embedded_data_reads_back_and_cannot_break_out(tmp_path):
    path = write_html_reports(standard_run(), tmp_path)[0]
    raw = path.read_text()
    block = raw[raw.index(f'id="{DATA_ID}">'):]
    block = block[: block.index("</script>")]
    assert "<" not in block[len(f'id="{DATA_ID}">'):] and "\\u003cscript\\u003e" in block
    data = read_embedded(path)
    assert data["smtprun"] == "0.1.0" and data["started_at"] == "2024-05-01T12:00:00.250000Z"
    assert data == json.loads(json.dumps(plan_data(standard_run(), standard_run().plans[0])))
    assert data["plan"]["cases"][1]["steps"][0]["reply"]["lines"] == [HOSTILE]


def test_plan_source_is_embedded_with_line_anchors(page):
    assert '<details class="source" id="source">' in page
    assert '<span class="sl" id="L2"><span class="ln">2</span>target: mx.example.test:25</span>' in page


def test_a_thousand_cases_are_written_quickly(tmp_path, capsys):
    def report(n: int) -> Path:
        cases = [failing_case(f"case {i}") if i % 50 == 0 else passing_case(f"case {i}") for i in range(n)]
        folder = tmp_path / str(n)
        return write_html_reports(make_run(cases), folder)[0]

    _, hundred = cpu_seconds(lambda: report(100))
    path, thousand = cpu_seconds(lambda: report(1000))
    with capsys.disabled():
        print(f"\n1,000-case HTML report: {thousand:.2f} s CPU, {path.stat().st_size / 1e6:.1f} MB")
    assert thousand < 2.0
    assert thousand < 25 * hundred, (hundred, thousand)  # ten times the cases, about ten times the work
    page = path.read_text()
    assert page.count('<details class="case passed"') == 980
    opened = re.findall(r'<details class="case (\w+)" id="case-\d+" open>', page)
    assert opened == ["failed"] * 20, "only the failed cases are open"
