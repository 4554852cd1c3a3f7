"""Reporters: what a user finds in the report folder and its index, the JUnit and the JSON file (the HTML page
itself: tests/unit/test_html.py)."""

from __future__ import annotations

import html
import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from markupsafe import escape

from runner.errors import ReportError
from runner.report import atomic_write, rebuild_index, write_html_reports, write_json, write_junit
from runner.report.advice import smuggling_advice
from runner.report.archive import INDEX_NAME, scan_reports, write_new
from runner.report.compare import banner, compare_runs, ehlo_keywords
from runner.report.format import tls_rows
from runner.report.html import plan_data
from runner.report.markup import PIECE, breakable
from runner.results import (
    FAILED,
    PASSED,
    RECV,
    CaseResult,
    Event,
    RunResult,
    StepResult,
)
from tests.support.results import HOSTILE, T0, failing_case, make_run, passing_case, reply, standard_run


def html_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.html") if p.name != INDEX_NAME)


# --- file naming and the report folder --------------------------------------------------------


def test_report_is_named_after_the_plan_file_and_utc_start(tmp_path):
    written = write_html_reports(standard_run(), tmp_path)
    assert [p.name for p in written] == ["basic-20240501T120000Z.html"]
    assert (tmp_path / INDEX_NAME).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp file left behind"


def test_two_runs_in_the_same_second_both_survive(tmp_path):
    first = write_html_reports(standard_run(), tmp_path)[0]
    first_bytes = first.read_bytes()
    second = write_html_reports(standard_run(T0 + timedelta(microseconds=500000)), tmp_path)[0]
    assert html_files(tmp_path) == ["basic-20240501T120000Z-1.html", "basic-20240501T120000Z.html"]
    assert second.name == "basic-20240501T120000Z-1.html"
    assert first.read_bytes() == first_bytes, "the first report was not overwritten"


def test_write_new_never_replaces_an_existing_file(tmp_path):
    (tmp_path / "x-1.html").write_text("someone else's")
    paths = [write_new(tmp_path, "x", ".html", f"report {n}".encode()) for n in range(3)]
    assert [p.name for p in paths] == ["x.html", "x-2.html", "x-3.html"]
    assert (tmp_path / "x-1.html").read_text() == "someone else's"
    assert [p.read_text() for p in paths] == ["report 0", "report 1", "report 2"]


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.json"
    atomic_write(target, b"old")
    atomic_write(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_index_lists_every_run_newest_first(tmp_path):
    write_html_reports(standard_run(T0), tmp_path)
    write_html_reports(make_run([passing_case()], T0 + timedelta(hours=1)), tmp_path)
    index = (tmp_path / INDEX_NAME).read_text()
    newer, older = "basic-20240501T130000Z.html", "basic-20240501T120000Z.html"
    assert f'href="{newer}"' in index and f'href="{older}"' in index
    runs = index[index.index("All runs"):]
    assert runs.index(newer) < runs.index(older)
    assert "2024-05-01 13:00:00 UTC" in index
    assert "1 failed" in index and "1 skipped" in index


def test_index_orders_same_second_runs_by_their_number(tmp_path):
    write_html_reports(standard_run(T0), tmp_path)
    write_html_reports(standard_run(T0 + timedelta(microseconds=1)), tmp_path)
    runs = (tmp_path / INDEX_NAME).read_text().split("All runs", 1)[1]
    assert runs.index("basic-20240501T120000Z-1.html") < runs.index('"basic-20240501T120000Z.html"')


def test_corrupt_or_foreign_html_gives_a_warning_and_the_index_still_builds(tmp_path):
    write_html_reports(standard_run(), tmp_path)
    (tmp_path / "notes.html").write_text("<html><body>my own notes</body></html>")
    (tmp_path / "broken.html").write_text(
        '<script type="application/json" id="smtprun-summary">{"started_at": </script>'
    )
    (tmp_path / "binary.html").write_bytes(b"\xff\xfe\x00garbage")
    warnings: list[str] = []
    write_html_reports(standard_run(T0 + timedelta(days=1)), tmp_path, on_warning=warnings.append)
    assert len(warnings) == 3
    assert any("notes.html" in w and "not an smtprun report" in w for w in warnings)
    assert any("broken.html" in w and "damaged" in w for w in warnings)
    assert any("binary.html" in w for w in warnings)
    index = (tmp_path / INDEX_NAME).read_text()
    assert index.count('<td class="when">2024-05-0') == 2, "both real reports are listed"
    assert "broken.html" in index, "the index says which file it skipped"
    assert len(rebuild_index(tmp_path)) == 3


def test_the_index_shows_a_report_changed_since_an_earlier_scan(tmp_path):
    write_html_reports(standard_run(), tmp_path)
    [second] = write_html_reports(standard_run(T0 + timedelta(days=1)), tmp_path)
    entries, _ = scan_reports(tmp_path)
    text = second.read_text(encoding="utf-8")
    second.write_text(text.replace('{"name":"basic checks"', '{"name":"renamed plan"', 1), encoding="utf-8")
    assert rebuild_index(tmp_path, entries) == []
    index = (tmp_path / INDEX_NAME).read_text()
    assert "renamed plan" in index and "basic checks" in index  # the second read again, the first as it was
    again, _ = scan_reports(tmp_path, entries)
    assert again[0] is entries[0] and again[1] is not entries[1]  # only the changed file was read


def test_rebuild_index_on_an_empty_folder(tmp_path):
    assert rebuild_index(tmp_path) == []
    assert "No reports in this folder yet" in (tmp_path / INDEX_NAME).read_text()


def test_tls_facts_read_as_labels_and_values_not_json_keys(tmp_path):
    case = passing_case()
    case.tls = {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "verified": True,
                "subject": "commonName=mx.example.test", "issuer": "commonName=Example CA",
                "san": ["mx.example.test", "mail.example.test", "192.0.2.25"],
                "not_before": "2024-04-01T00:00:00Z", "not_after": "2024-06-30T12:00:00Z", "days_left": 60}
    page = write_html_reports(make_run([case]), tmp_path)[0].read_text(encoding="utf-8")
    table = page[page.index("<h3>TLS</h3>"):]
    table = table[:table.index("</table>")]
    assert re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", table) == [
        ("Protocol", "TLSv1.3"), ("Cipher", "TLS_AES_256_GCM_SHA384"),
        ("Certificate checked", "yes: the chain and the host name were verified"),
        ("Subject", "commonName=mx.example.test"), ("Issuer", "commonName=Example CA"),
        ("Names (SAN)", "mx.example.test, mail.example.test, 192.0.2.25"),
        ("Valid from", "2024-04-01 00:00:00 UTC"),
        ("Valid until", "2024-06-30 12:00:00 UTC · 60 days left when the case ran"),
    ]


def test_tls_rows_say_expiry_unverified_and_unknown_facts_plainly():
    assert tls_rows({"verified": False, "not_after": "2024-04-01T00:00:00Z", "days_left": -1,
                     "san": [], "ocsp_stapled": {"status": "good"}, "cipher": None}) == [
        ("Certificate checked", "no (verify: false)"),
        ("Valid until", "2024-04-01 00:00:00 UTC · expired 1 day before the case ran"),
        ("Names (SAN)", "none"), ("Ocsp stapled", '{"status": "good"}'), ("Cipher", "—"),
    ]
    assert tls_rows({"not_after": "June 2024", "days_left": 1}) == [
        ("Valid until", "June 2024 · 1 day left when the case ran")]
    assert tls_rows(None) == [] and tls_rows({"days_left": 5}) == [("Days left", "5")]


def test_cells_break_long_tokens_only_and_stay_escaped():
    assert breakable("250-ENHANCEDSTATUSCODES") == "250-ENHANCEDSTATUSCODES"  # short: never cut
    assert breakable(HOSTILE) == str(escape(HOSTILE)) and breakable(None) == ""
    blob = "334 " + "QUJD" * 40
    cut = breakable(blob)
    assert cut.replace("<wbr>", "") == blob and all(len(p) <= PIECE + 4 for p in cut.split("<wbr>"))
    url = "550 5.7.1 https://support.example.com/mail/answer/81126?p=NotAuthorizedError"
    assert breakable(url) == ("550 5.7.1 https:<wbr>/<wbr>/<wbr>support.<wbr>example.<wbr>com/<wbr>mail/<wbr>"
                              "answer/<wbr>81126?<wbr>p=<wbr>NotAuthorizedErr<wbr>or")
    assert breakable("MAIL FROM:<postmaster@example.com>") == str(escape("MAIL FROM:<postmaster@example.com>"))
    marks = breakable("<" * 40)
    assert html.unescape(marks.replace("<wbr>", "")) == "<" * 40 and not re.search(r"&[a-z]*<wbr>", marks)


VULNERABLE = ("vulnerable: the server answered the smuggled MAIL FROM (250 2.1.0 Ok): it took <LF>.<LF> as the "
              "end of the data (250 2.0.0 Ok: queued as 3EB6B1700E1)")


def smuggling_case(name: str, banner_text: str, verdict: str = VULNERABLE) -> CaseResult:
    found = verdict.startswith("vulnerable")
    steps = [StepResult(1, 8, "expect", "read a reply", expected="220", reply=reply(220, banner_text)),
             StepResult(2, 36, "smuggle", "smuggle <LF>.<LF>: MAIL FROM:<admin@example.com>",
                        status=FAILED if found else PASSED, expected="one message, or a refusal",
                        reply=reply(250, "2.1.0 Ok"), reason=verdict if found else None, verdict=verdict)]
    return CaseResult(name, FAILED if found else PASSED, steps, [Event(0.0, RECV, f"220 {banner_text}\r\n".encode())],
                      started_at=T0, duration=2.2, target="mx.example.test:25", peer="192.0.2.25:25", line=33,
                      reason=f"step 2: {verdict}" if found else None)


def test_a_smuggling_finding_says_how_to_fix_it_beside_it(tmp_path):
    cases = [smuggling_case("<LF>.<LF>", "mx.example.test ESMTP Postfix (Debian/GNU)"),
             smuggling_case("<CR><LF>.<LF>", "mx.example.test ESMTP ready"),
             smuggling_case("<CR>.<CR>", "mx.example.test ESMTP Postfix",
                            "not vulnerable: the whole text was taken as one message (250 2.0.0 Ok)")]
    page = write_html_reports(make_run(cases), tmp_path)[0].read_text(encoding="utf-8")
    postfix, unnamed, safe = (page[page.index(f'id="case-{n}"'):] for n in (1, 2, 3))
    postfix, unnamed = postfix[:postfix.index('id="case-2"')], unnamed[:unnamed.index('id="case-3"')]
    advice = postfix[postfix.index('<div class="advice">'):postfix.index('<div class="facts">')]
    assert postfix.index('<div class="failure">') < postfix.index('<div class="advice">'), "beside the finding"
    assert "SMTP smuggling, CVE-2023-51764" in advice
    assert re.findall(r"<h4>(\w+)", advice) == ["Postfix", "Exim", "Sendmail", "Any"]
    assert "the server's banner names it" in advice and "<code>smtpd_forbid_bare_newline = yes</code>" in advice
    assert "smtpd_forbid_bare_newline_exclusions" in advice and "$mynetworks" in advice
    assert "<code>chunking_advertise_hosts =</code>" in advice and "4.97.1" in advice  # Exim
    assert "<code>srv_features</code>" in advice and "8.18.1" in advice  # Sendmail
    assert advice.index("Postfix") < advice.index('<details class="sub other-servers">') < advice.index("Exim")
    assert re.findall(r"<h4>(\w+)", unnamed) == ["Postfix", "Exim", "Sendmail", "Any"]
    assert "banner names" not in unnamed and "other-servers" not in unnamed
    assert 'class="advice"' not in safe


def test_the_server_the_banner_names_comes_first():
    def order(banner_text: str) -> tuple[str, ...]:
        return smuggling_advice(smuggling_case("x", banner_text)).servers

    assert order("mail.example.test ESMTP Exim 4.96 Mon, 07 Dec 2026") == ("exim", "postfix", "sendmail")
    assert order("mx ESMTP Sendmail 8.17.1.9/8.17.1.9; Mon") == ("sendmail", "postfix", "exim")
    assert smuggling_advice(smuggling_case("x", "mx.postfixed.test ESMTP")).named == ""  # a word, not part of one
    assert smuggling_advice(replace(smuggling_case("x", "ESMTP Postfix"), steps=[])) is None


# --- comparison with the previous run -----------------------------------------------------------


def test_comparison_finds_newly_failing_step_and_vanished_keyword(tmp_path):
    before = make_run([passing_case("relay is refused"), passing_case()], T0)
    after_case = failing_case("relay is refused")
    after = make_run([after_case, passing_case(keywords=("PIPELINING", "SIZE 20480000"))], T0 + timedelta(days=1))
    write_html_reports(before, tmp_path)
    page = write_html_reports(after, tmp_path)[0].read_text()
    changes = page[page.index('id="changes"'):page.index("<h2>Cases")]
    assert "Changes since 2024-05-01 12:00:00 UTC" in changes
    assert "Now failing (1)" in changes and "relay is refused" in changes
    assert "step 2" in changes and "RCPT TO" in changes
    assert "Banner changed" in changes and "220 &lt;script&gt;alert(1)&lt;/script&gt;" in changes
    assert '<span class="kw removed" title="vanished">− STARTTLS</span>' in changes
    assert "SIZE 10240000 → 20480000" in changes


def test_comparison_ignores_other_targets_and_later_runs(tmp_path):
    other = make_run([failing_case()], T0 - timedelta(days=2))
    other.plans[0].target = "other.example.test:25"
    write_html_reports(other, tmp_path)
    write_html_reports(make_run([failing_case()], T0 + timedelta(days=5)), tmp_path)  # later, not earlier
    page = write_html_reports(make_run([failing_case()], T0), tmp_path)[0].read_text()
    assert 'id="changes"' not in page
    page = write_html_reports(make_run([failing_case()], T0 + timedelta(days=6)), tmp_path)[0].read_text()
    assert "Changes since 2024-05-06 12:00:00 UTC" in page and "No change" in page


def _data(run: RunResult) -> dict:
    return json.loads(json.dumps(plan_data(run, run.plans[0])))


def test_compare_runs_on_plain_dicts():
    before = _data(make_run([passing_case("a"), failing_case("b"), passing_case("gone")]))
    after = _data(make_run([failing_case("a"), passing_case("b"), passing_case("new")], T0 + timedelta(1)))
    changes = compare_runs(before, after)
    assert changes.since == "2024-05-01T12:00:00.250000Z"
    assert [c.name for c in changes.now_failing] == ["a"]
    assert [(s.index, s.before, s.after) for s in changes.now_failing[0].steps] == [(2, PASSED, FAILED)]
    assert [c.name for c in changes.now_passing] == ["b"]
    assert changes.cases_added == ("new",) and changes.cases_removed == ("gone",)
    assert changes.banner_before == "220 mx.example.test ESMTP"
    assert not changes.empty
    assert compare_runs(before, before).empty


def test_banner_and_ehlo_keywords_from_plan_dict():
    plan = _data(make_run([passing_case()]))["plan"]
    assert banner(plan) == "220 mx.example.test ESMTP"
    assert ehlo_keywords(plan) == {"PIPELINING": "", "SIZE": "10240000", "STARTTLS": ""}
    assert banner({"cases": []}) is None and ehlo_keywords({}) == {}


# --- JUnit and JSON -----------------------------------------------------------------------------


def test_junit_parses_and_counts(tmp_path):
    path = tmp_path / "junit.xml"
    write_junit(standard_run(), path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "errors")} == {"tests": "3", "failures": "1", "errors": "0"}
    assert root.get("skipped") is None, "the Jenkins JUnit XSD has no skipped attribute on <testsuites>"
    float(root.get("time"))
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "basic checks" and suite.get("tests") == "3" and suite.get("failures") == "1"
    assert suite.get("skipped") == "1"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["greeting and EHLO", "relay is refused", "needs TLS"]
    assert {c.get("classname") for c in cases} == {"basic checks"}
    failure = cases[1].find("failure")
    assert failure.get("message") == "step 2: expected 250, got 550 5.7.1 relaying denied"
    assert "got:      550 5.7.1 relaying denied <script>alert(1)</script>" in failure.text
    assert "C: RCPT TO:<victim@elsewhere.test>\\x00\\r\\n" in failure.text
    assert cases[2].find("skipped") is not None and cases[0].find("failure") is None
    assert "S: 250-PIPELINING\\r\\n" in cases[0].find("system-out").text
    assert b"\x00" not in path.read_bytes()


def test_junit_survives_control_characters_in_names(tmp_path):
    case = failing_case("bad\x00name\x1b")
    case.reason = "why\x00\x07"
    write_junit(make_run([case]), tmp_path / "j.xml")
    tc = ET.parse(tmp_path / "j.xml").getroot().find("testsuite/testcase")
    assert tc.get("name") == "bad\\x00name\\x1b"
    assert tc.find("failure").get("message") == "why\\x00\\x07"


def test_json_file_says_what_happened(tmp_path):
    write_json(standard_run(), tmp_path / "run.json")
    data = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert {k: data[k] for k in ("smtprun", "started_at", "status", "counts", "interrupted", "errors")} == {
        "smtprun": "0.1.0", "started_at": "2024-05-01T12:00:00.250000Z", "status": "failed",
        "counts": {"passed": 1, "failed": 1, "skipped": 1}, "interrupted": False, "errors": [],
    }
    [plan] = data["plans"]
    assert (plan["name"], plan["file"], plan["target"], plan["status"]) == (
        "basic checks", "plans/basic.yaml", "mx.example.test:25", "failed")
    assert [(c["name"], c["status"], c["line"]) for c in plan["cases"]] == [
        ("greeting and EHLO", "passed", 4), ("relay is refused", "failed", 9), ("needs TLS", "skipped", 14)]
    passed, failed, skipped = plan["cases"]
    assert passed["peer"] == "192.0.2.25:25" and passed["tls"]["version"] == "TLSv1.3"
    assert passed["steps"][1]["reply"] == {
        "code": 250, "lines": ["mx.example.test Hello", "PIPELINING", "SIZE 10240000", "STARTTLS"], "enhanced": None}
    assert failed["reason"] == "step 2: expected 250, got 550 5.7.1 relaying denied"
    step = failed["steps"][1]
    assert (step["line"], step["sent"], step["status"], step["expected"]) == (
        11, "RCPT TO:<victim@elsewhere.test>", "failed", "250")
    assert step["reply"]["code"] == 550 and step["reply"]["enhanced"] == "5.7.1"
    assert [s["status"] for s in failed["steps"]] == ["passed", "failed", "skipped"]
    assert failed["steps"][0]["captures"] == {"greeting": HOSTILE}
    # The transcript is text a person can read: direction, offset, and bytes with CR, LF and NUL spelled out.
    assert failed["transcript"][2] == {"t": 0.004, "dir": "C", "data": "RCPT TO:<victim@elsewhere.test>\\x00\\r\\n"}
    assert [e["dir"] for e in passed["transcript"]] == ["*", "S", "C", "S", "C", "S"]
    assert skipped["reason"] == "skipped: no TLS certificate given" and skipped["steps"] == []


def test_json_to_stdout(capsys):
    write_json(standard_run(), "-")
    assert json.loads(capsys.readouterr().out)["counts"] == {"passed": 1, "failed": 1, "skipped": 1}


def test_unwritable_report_folder_is_a_report_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ReportError):
        write_html_reports(standard_run(), blocker / "reports")
    with pytest.raises(ReportError):
        write_json(standard_run(), blocker / "run.json")
    assert os.listdir(tmp_path) == ["file"]


def test_comparison_sees_a_case_that_became_skipped_and_load_runs_by_name():
    from runner.report.compare import compare_runs

    before = {"started_at": "2026-01-01T00:00:00.000000Z", "plan": {"cases": [
        {"name": "tls", "status": "failed", "steps": []}, {"name": "banner ×50", "status": "passed", "load": {}}]}}
    after = {"started_at": "2026-01-02T00:00:00.000000Z", "plan": {"cases": [
        {"name": "tls", "status": "skipped", "steps": []}, {"name": "banner", "status": "failed", "steps": []}]}}
    changes = compare_runs(before, after)
    assert [(c.name, c.before, c.after) for c in changes.status_other] == [("tls", "failed", "skipped")]
    assert [(c.name, c.before, c.after) for c in changes.now_failing] == [("banner", "passed", "failed")]
    assert not changes.cases_added and not changes.cases_removed
