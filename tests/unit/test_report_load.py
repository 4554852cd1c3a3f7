"""Reports of load runs (--repeat), retried cases, included steps, `when:` skips and internal errors."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

from runner.report import write_html_reports, write_junit
from runner.report.archive import INDEX_NAME, read_embedded
from runner.report.compare import compare_runs
from runner.report.html import plan_data
from runner.results import FAILED, INFO, PASSED, RECV, SEND, SKIPPED, CaseResult, Event, RunResult, StepResult
from tests.support.results import T0, failing_case, make_run, passing_case, reply
from tests.support.timing import cpu_seconds

WHEN_FALSE = "skipped: when \"'STARTTLS' in ehlo\" is false"
TIMEOUT = "timed out waiting for a reply"


def load_figures(sessions: int = 5000, failures: dict[str, int] | None = None) -> dict:
    failures = failures or {}
    failed = sum(failures.values())
    return {
        "sessions": sessions,
        "passed": sessions - failed,
        "failed": failed,
        "wall": 6.25,
        "sessions_per_s": round(sessions / 6.25, 2),
        "session_p50": 0.0214,
        "session_p99": 0.1873,
        "steps": [
            {"index": 1, "label": "banner", "count": sessions, "p50": 0.0021, "p90": 0.0043, "p99": 0.0123,
             "max": 0.081},
            {"index": 2, "label": "EHLO client.test", "count": sessions, "p50": 0.0009, "p90": 0.0017,
             "p99": 0.0481, "max": 0.412},
            {"index": 3, "label": "MAIL FROM:<load@client.test>", "count": sessions - failed, "p50": 0.0011,
             "p90": 0.0024, "p99": 0.0093, "max": 1.94},
            {"index": 4, "label": "QUIT", "count": sessions - failed, "p50": 0.0004, "p90": 0.0006,
             "p99": 0.0011, "max": 0.0152},
        ],
        "failures": dict(sorted(failures.items(), key=lambda kv: -kv[1])),
    }


def timed_out_session(n: int) -> CaseResult:
    steps = [
        StepResult(1, 5, "expect", "banner", expected="220", reply=reply(220, "mx.example.test ESMTP")),
        StepResult(2, 6, "send", "EHLO client.test", status=FAILED, expected="250", reason=TIMEOUT),
        StepResult(3, 7, "send", "MAIL FROM:<load@client.test>", status=SKIPPED),
    ]
    transcript = [
        Event(0.0, INFO, f"connected to 192.0.2.25:25 (session {n})".encode()),
        Event(0.002, RECV, b"220 mx.example.test ESMTP\r\n"),
        Event(0.003, SEND, b"EHLO client.test\r\n"),
        Event(30.003, INFO, TIMEOUT.encode()),
    ]
    return CaseResult("bulk greeting", FAILED, steps, transcript, started_at=T0, duration=30.003,
                      target="mx.example.test:25", peer="192.0.2.25:25", line=4, reason=f"step 2: {TIMEOUT}")


def load_case(sessions: int = 5000, failures: dict[str, int] | None = None) -> CaseResult:
    case = passing_case(f"bulk greeting ×{sessions}")
    case.load = load_figures(sessions, failures)
    if case.load["failed"]:
        case.status = FAILED
        case.reason = f"{case.load['failed']} of {sessions} sessions failed"
        case.attempts = [timed_out_session(n) for n in range(1, 4)]
    case.duration = case.load["wall"]
    return case


def retried_case() -> CaseResult:
    final = passing_case("delivery after greylisting")
    final.notes.append("passed on try 3 of 3")
    tries = []
    for n in (1, 2):
        earlier = failing_case("delivery after greylisting")
        earlier.reason = f"step 2: expected 250, got 450 4.7.1 greylisted (try {n})"
        tries.append(earlier)
    final.attempts = tries
    return final


def included_case() -> CaseResult:
    case = passing_case("greeting from a shared file")
    case.steps[0].file = "plans/common/greet.yaml"
    case.steps[0].line = 3
    return case


def when_skipped_case() -> CaseResult:
    steps = [StepResult(1, 20, "starttls", "starttls", status=SKIPPED),
             StepResult(2, 21, "send", "QUIT", status=SKIPPED)]
    return CaseResult("STARTTLS upgrade", SKIPPED, steps, started_at=T0, line=19, reason=WHEN_FALSE)


def write(tmp_path: Path, cases: list[CaseResult], errors: list[str] | None = None) -> str:
    run = make_run(cases)
    run.errors = list(errors or [])
    return write_html_reports(run, tmp_path)[0].read_text(encoding="utf-8")


def case_html(page: str, anchor: str) -> str:
    start = page.index(f'id="{anchor}"')
    end = page.find('<details class="case', start)
    return page[start:end if end > 0 else page.index('id="source"')]


# --- load mode ----------------------------------------------------------------------------------


def test_load_case_shows_figures_and_an_inline_latency_chart(tmp_path):
    page = write(tmp_path, [load_case()])
    case = case_html(page, "case-1")
    figures = case[case.index('<table class="figures">'):]
    figures = figures[:figures.index("</table>")]
    for text in ("sessions", "5,000", "sessions/s", "800.0", "session p50", "21.4 ms", "session p99", "187 ms"):
        assert text in figures
    svg = re.search(r"<svg [^>]*>.*?</svg>", case, re.S)
    assert svg, "the chart is inline SVG"
    chart = svg[0]
    assert chart.count('<g class="step">') == 4, "one bar group per step"
    assert ">2 · EHLO client.test</text>" in chart
    assert ">48.1 ms</text>" in chart, "EHLO's p99 is written on its bar"
    assert ">1.94 s</text>" in chart and ">0.40 ms</text>" in chart
    assert "MAIL FROM:&lt;load@client.test&gt;" in chart, "labels are escaped"
    assert "<script" not in chart and "href" not in chart


def test_load_case_shows_sessions_not_one_transcript_per_session(tmp_path):
    case = case_html(write(tmp_path, [load_case()]), "case-1")
    assert "first session — passed" in case
    assert "failing session" not in case and "Failures by reason" not in case
    assert case.count('class="transcript"') == 1
    assert '<span class="why info">5,000 sessions · 800.0/s · p99 187 ms</span>' in case


def test_failing_load_case_lists_reasons_and_kept_failing_sessions(tmp_path):
    failures = {TIMEOUT: 12, "expected 250, got 421 4.3.2 too busy": 3}
    page = write(tmp_path, [load_case(failures=failures)])
    case = case_html(page, "case-1")
    assert '<details class="case failed" id="case-1" open>' in page
    assert "15 of 5000 sessions failed" in case
    table = case[case.index('<table class="failures">'):]
    table = table[:table.index("</table>")]
    assert f'<td class="t">{TIMEOUT}</td><td class="num">12</td><td class="num">0.2 %</td>' in table
    assert "421 4.3.2 too busy" in table
    kept = re.findall(r'<details class="sub kept (\w+)">\s*<summary>.*?</span> (.*?)</summary>', case)
    assert [title for _, title in kept] == [
        "first session — passed", *(f"failing session {n} — step 2: {TIMEOUT}" for n in (1, 2, 3))]
    assert all(' open' not in d for d in re.findall(r'<details class="sub kept[^>]*>', case)), "collapsed"
    assert "(session 3)" in case, "each kept session carries its own transcript"


def test_a_hundred_thousand_session_run_stays_small(tmp_path):
    failures = {f"reason {n}": 100 for n in range(50)} | {"other": 7}
    page = write(tmp_path, [load_case(100_000, failures)])
    assert len(page) < 200_000
    assert "100,000" in page and "5007 of 100000 sessions failed" in page


def test_junit_load_case_has_figures_and_a_counted_failure_message(tmp_path):
    run = make_run([load_case(), load_case(failures={TIMEOUT: 12})])
    write_junit(run, tmp_path / "junit.xml")
    passed, failed = ET.parse(tmp_path / "junit.xml").getroot().findall("testsuite/testcase")
    out = passed.find("system-out").text
    assert "sessions: 5000 (5000 passed, 0 failed) in 6.250s, 800.0 sessions/s" in out
    assert "step 2 EHLO client.test (n=5000): p50 0.90 ms, p90 1.70 ms, p99 48.1 ms, max 412 ms" in out
    assert "first session's transcript:" in out and "C: EHLO client.test" in out
    assert passed.find("failure") is None
    failure = failed.find("failure")
    assert failure.get("message") == f"12 of 5000 sessions failed: 12 × {TIMEOUT}"
    assert failure.get("type") == "smtprun.load"
    assert "failing session 1:" in failure.text and "failing session 3:" in failure.text
    assert failure.text.count("transcript:") == 1, "only the first failing session's transcript"


def test_compare_treats_load_cases_by_status_only():
    before = json.loads(json.dumps(plan_data(make_run([load_case()]), make_run([load_case()]).plans[0])))
    failing_load = load_case(failures={TIMEOUT: 12})
    failing_load.steps[1].status = FAILED  # the sample session differs step by step
    run = make_run([failing_load], T0 + timedelta(days=1))
    after = json.loads(json.dumps(plan_data(run, run.plans[0])))
    changes = compare_runs(before, after)
    assert [(c.name, c.before, c.after, c.steps) for c in changes.now_failing] == [
        ("bulk greeting ×5000", PASSED, FAILED, ())]


def test_a_thousand_cases_with_load_and_retries_are_written_quickly(tmp_path):
    def case(n: int) -> CaseResult:
        if n % 100 == 0:
            return load_case(failures={TIMEOUT: 2})
        return retried_case() if n % 10 == 0 else passing_case(f"case {n}")

    def report(n: int) -> Path:
        return write_html_reports(make_run([case(i) for i in range(n)]), tmp_path / str(n))[0]

    _, hundred = cpu_seconds(lambda: report(100))
    path, thousand = cpu_seconds(lambda: report(1000))
    assert thousand < 2.0
    assert thousand < 25 * hundred, (hundred, thousand)  # ten times the cases, about ten times the work
    assert path.read_text().count('<span class="tries">3 tries</span>') == 90


# --- retries, included steps, when: skips, internal errors -------------------------------------


def test_retried_case_shows_every_try(tmp_path):
    case = case_html(write(tmp_path, [retried_case()]), "case-1")
    assert '<span class="tries">3 tries</span>' in case
    assert "passed on try 3 of 3" in case
    assert "<h3>Steps <span class=\"legend\">try 3, the last</span></h3>" in case
    assert "Earlier tries (2)" in case
    for n in (1, 2):
        assert f"try {n} — failed: step 2: expected 250, got 450 4.7.1 greylisted (try {n})" in case
    earlier = case[case.index("Earlier tries"):]
    assert earlier.count('<details class="sub kept failed">') == 2
    assert earlier.count('class="transcript"') == 2 and earlier.count('<table class="steps">') == 2
    assert "Failed at step 2 (send)" in earlier


def test_junit_lists_earlier_tries(tmp_path):
    write_junit(make_run([retried_case()]), tmp_path / "junit.xml")
    out = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite/testcase/system-out").text
    assert out.startswith("try 1 — failed: step 2: expected 250, got 450 4.7.1 greylisted (try 1)\n"
                          "try 2 — failed: step 2: expected 250, got 450 4.7.1 greylisted (try 2)\n"
                          "passed on try 3 of 3\n")
    assert "S: 221 Bye" in out


def test_included_step_shows_its_own_file_and_line(tmp_path):
    case = case_html(write(tmp_path, [included_case()]), "case-1")
    rows = re.findall(r'<td class="ref">(.*?)</td>', case)
    assert rows[0] == "<code>plans/common/greet.yaml:3</code>", "no link into the plan's own source"
    assert rows[1] == '<a href="#L6">plans/basic.yaml:6</a>'


def test_junit_names_the_included_file_of_a_failed_step(tmp_path):
    case = failing_case()
    case.steps[1].file = "plans/common/relay.yaml"
    write_junit(make_run([case]), tmp_path / "junit.xml")
    failure = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite/testcase/failure")
    assert "step 2 (send) at plans/common/relay.yaml:11" in failure.text


def test_case_skipped_by_when_shows_its_reason(tmp_path):
    page = write(tmp_path, [passing_case(), when_skipped_case()])
    summary = page[page.index('id="summary"'):page.index("<h2>Cases")]
    assert '<div class="n">1</div><div class="l">skipped</div>' in summary
    assert "when &#34;&#39;STARTTLS&#39; in ehlo&#34; is false" in summary
    assert '<a href="#case-2">STARTTLS upgrade</a>' in summary
    case = case_html(page, "case-2")
    header = case[:case.index("</summary>")]
    assert '<span class="why">skipped: when &#34;&#39;STARTTLS&#39; in ehlo&#34; is false</span>' in header
    assert '<div class="failure skipped">' in case


def test_skipped_step_shows_why_and_unreached_step_does_not(tmp_path):
    case = passing_case()
    case.steps.insert(2, StepResult(3, 8, "starttls", "starttls", status=SKIPPED, reason=WHEN_FALSE))
    unreached = failing_case()
    page = write(tmp_path, [case, unreached])
    first = case_html(page, "case-1")
    assert '<div class="reason">skipped: when &#34;&#39;STARTTLS&#39; in ehlo&#34; is false</div>' in first
    quit_row = re.search(r'<tr class="skipped">.*?QUIT.*?</tr>', case_html(page, "case-2"))[0]
    assert 'class="reason"' not in quit_row


def test_run_errors_are_shown_first(tmp_path):
    errors = ["internal error: KeyError: 'ehlo'", "internal error: <b>bold</b>"]
    page = write(tmp_path, [passing_case()], errors)
    box = page[page.index('id="errors"'):page.index('id="summary"')]
    assert page.index('id="errors"') < page.index('id="summary"') < page.index("<h2>Cases")
    assert "smtprun hit 2 internal errors in this run" in box
    assert "KeyError: &#39;ehlo&#39;" in box and "&lt;b&gt;bold&lt;/b&gt;" in box
    assert '<a class="verdict errors" href="#errors">2 internal errors</a>' in page
    index = (tmp_path / INDEX_NAME).read_text()
    assert "2 internal errors" in index
    assert read_embedded(next(p for p in tmp_path.glob("basic-*.html")))["errors"] == errors


def test_page_without_run_errors_has_no_error_box(tmp_path):
    assert 'id="errors"' not in write(tmp_path, [passing_case()])


def test_junit_reports_run_errors_as_errors(tmp_path):
    run: RunResult = make_run([passing_case()])
    run.errors = ["internal error: KeyError: 'ehlo'"]
    write_junit(run, tmp_path / "junit.xml")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert (root.get("tests"), root.get("errors")) == ("2", "1")
    error = root.find("testsuite/testcase/error")
    assert error.get("message") == "internal error: KeyError: 'ehlo'"


def test_load_case_where_no_session_ran(tmp_path):
    case = CaseResult("bulk greeting ×0", FAILED, started_at=T0, line=4, reason="no session ran",
                      steps=[StepResult(1, 5, "expect", "banner", status=SKIPPED)],
                      load=load_figures(0) | {"steps": [], "sessions_per_s": None})
    page = write(tmp_path, [case])
    body = case_html(page, "case-1")
    assert "no session ran" in body and "<svg" not in body and "Example sessions" not in body
    write_junit(make_run([case]), tmp_path / "junit.xml")
    failure = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite/testcase/failure")
    assert failure.get("message") == "no session ran"
