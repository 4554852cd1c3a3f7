"""The HTML report of a fleet: 10,000 cases lead with their failures, each with its transcript, and fold the passing
ones into rows; the page stays small, and the next run's report still says what changed."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

from runner.report import write_html_reports
from runner.report.archive import read_embedded
from runner.report.digest import FULL_CASES, FULL_FAILURES, KEEP_PASSING_TRANSCRIPTS
from tests.support.results import T0, failing_case, fleet_run, make_run, passing_case
from tests.support.timing import cpu_seconds


def test_ten_thousand_cases_lead_with_failures_and_fold_the_passing_ones(tmp_path, capsys):
    path, cpu = cpu_seconds(lambda: write_html_reports(fleet_run(), tmp_path)[0])
    page = path.read_text(encoding="utf-8")
    with capsys.disabled():
        print(f"\n10,000-case HTML report: {cpu:.2f} s CPU, {path.stat().st_size / 1e6:.1f} MB")
    assert cpu < 10.0
    assert path.stat().st_size < 7_000_000  # 13.4 MB when every case's steps were embedded
    summary, failures, passed = page.index('id="summary"'), page.index('id="failures"'), page.index('id="passed"')
    assert summary < failures < passed
    assert "10,000 addresses, e.g. <code>127.0.1.1:40000, 127.0.1.1:40001, 127.0.1.1:40002</code> …" in page
    assert "127.0.1.99:40050" not in page[summary:failures], "the header does not list every address"

    assert '<h2 id="failures">Failures <span class="legend">1,000 of 10,000 cases;' in page
    reasons = page[page.index('<table class="rows reasons">'):page.index("Every failed case")]
    assert reasons.count("<tr>") == 2, "one reason, one header row"
    assert "step 2 (send), <a href=\"#L11\">plans/basic.yaml:11</a>" in reasons
    assert "expected 250, got 550 (bad byte \\x00 in reason)</td><td class=\"num\">1,000</td>" in reasons

    failed = page[page.index('<table class="rows failed">'):page.index('id="addresses"')]
    assert failed.count("<tr") == 1 + 1000
    assert '<tr id="case-9991"><td>fleet @ 127.0.1.100:40090</td><td class="w">127.0.1.100:40090</td>' in failed
    assert "550 5.7.1 relaying denied &lt;script&gt;alert(1)&lt;/script&gt;" in failed
    assert "<script>alert" not in page
    last = failed[failed.index('<tr id="case-9991">'):]
    last = last[:last.index("</tr>")]
    assert '<details class="sub"><summary>4 lines</summary>' in last, "each failure not shown whole: its transcript"
    assert '<span class="d">C:</span><span class="x">RCPT TO:&lt;victim@elsewhere.test&gt;\\x00\\r\\n</span>' in last
    assert failed.count('<summary>4 lines</summary>') == 1000 - FULL_FAILURES
    assert failed.count('">below</a></td></tr>') == FULL_FAILURES

    assert page.count('<details class="case failed"') == FULL_FAILURES
    assert '<details class="case passed"' not in page
    assert re.findall(r'<details class="case failed" id="(case-\d+)" open>', page)[:2] == ["case-1", "case-11"]
    rows = page[passed:page.index("</table>", passed)]
    assert rows.count("<tr id=") == 9000
    assert '<tr id="case-2"><td>fleet @ 127.0.1.1:40001</td><td class="w">127.0.1.1:40001</td>' in rows
    assert "EHLO client.test" not in rows, "no passing transcript or step in the page"

    addresses = page[page.index('id="addresses"'):passed]
    assert "100 addresses, those with failures first" in addresses
    assert '<tr><td>127.0.1.1</td><td class="num">90</td><td class="num c-fail">10</td>' in addresses


def test_large_report_data_keeps_failing_cases_and_a_few_passing_ones_whole(tmp_path):
    data = read_embedded(write_html_reports(fleet_run(2000), tmp_path)[0])
    cases = data["plan"]["cases"]
    assert len(cases) == 2000
    passing = [c for c in cases if c["status"] == "passed"]
    assert sum("transcript" in c for c in passing) == KEEP_PASSING_TRANSCRIPTS
    assert data["plan"]["cases_abridged"] == len(passing) - KEEP_PASSING_TRANSCRIPTS
    assert all(c["transcript"] and len(c["steps"]) == 3 for c in cases if c["status"] == "failed")
    assert passing[-1] == {"name": "fleet @ 127.0.1.20:40099", "status": "passed", "peer": "127.0.1.20:40099",
                           "steps": [{"index": 1, "status": "passed"}, {"index": 2, "status": "passed"},
                                     {"index": 3, "status": "passed"}]}


def test_the_next_fleet_report_names_what_changed_in_abridged_cases(tmp_path):
    write_html_reports(fleet_run(2000), tmp_path)
    later = fleet_run(2000)
    plan = later.plans[0]
    plan.cases[1999] = replace(failing_case(plan.cases[1999].name), target=plan.cases[1999].target)  # passed before
    plan.cases[1990] = replace(passing_case(plan.cases[1990].name), target=plan.cases[1990].target)  # failed before
    later.started_at = T0 + timedelta(hours=1)
    page = write_html_reports(later, tmp_path)[0].read_text(encoding="utf-8")
    changes = page[page.index('id="changes"'):page.index("</section>", page.index('id="changes"'))]
    now_failing = changes[changes.index("Now failing (1)"):changes.index("Now passing (1)")]
    assert "<strong>fleet @ 127.0.1.20:40099</strong>" in now_failing
    assert "step 2 (<code>plans/basic.yaml:11</code>) send <code>RCPT TO:&lt;victim@elsewhere.test&gt;</code>: " \
           "passed → <strong class=\"c-fail\">failed</strong>" in now_failing
    now_passing = changes[changes.index("Now passing (1)"):]
    assert "<strong>fleet @ 127.0.1.20:40090</strong>" in now_passing  # abridged now: the step named as before
    assert "step 2 (<code>plans/basic.yaml:11</code>) send <code>RCPT TO:&lt;victim@elsewhere.test&gt;</code>: " \
           "failed → <strong class=\"c-pass\">passed</strong>" in now_passing


def test_up_to_a_thousand_cases_every_case_is_whole(tmp_path):
    cases = [passing_case(f"case {i}") for i in range(FULL_CASES)]
    path = write_html_reports(make_run(cases), tmp_path)[0]
    page = path.read_text()
    assert page.count('<details class="case passed"') == FULL_CASES
    assert 'id="failures"' not in page
    assert "transcripts_omitted" not in page


def test_header_names_ten_addresses_and_counts_more(tmp_path):
    def header(n: int) -> str:
        cases = [replace(passing_case(f"c{i}"), peer=f"192.0.2.{i}:25") for i in range(n)]
        page = write_html_reports(make_run(cases), tmp_path / str(n))[0].read_text()
        return page[page.index("<dt>Connected to</dt>"):page.index("<dt>Started</dt>")]

    assert header(10).count("192.0.2.") == 10 and "addresses" not in header(10)
    assert header(11) == ("<dt>Connected to</dt><dd>11 addresses, e.g. <code>192.0.2.0:25, 192.0.2.1:25, "
                          "192.0.2.2:25</code> …</dd>\n    ")
