"""The HTML report in a real browser (headless Chromium): it renders, collapses and expands, wraps
replies between words, and runs no script but its own.

Needs /usr/bin/chromium (Debian package `chromium`) and, for the click test, chromedriver
(`chromium-driver`). WebDriver is spoken over plain HTTP with urllib, so no client library is
needed. Without the browser the tests are skipped, or fail when CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from runner.report import write_html_reports
from runner.results import FAILED, INFO, PASSED, RECV, SEND, CaseResult, Event, PlanResult, RunResult, StepResult
from runner.smtp.protocol import Reply
from tests.support.results import fleet_run

CHROMIUM = os.environ.get("SMTPRUN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SMTPRUN_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
HOSTILE = "<script>alert(1)</script>"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver element reference key
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
]


def need(path: str, package: str) -> None:
    if os.access(path, os.X_OK):
        return
    message = f"{path} not found (install the Debian package {package})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def reply(code: int, *lines: str) -> Reply:
    raw = b"".join(f"{code}{'-' if i < len(lines) - 1 else ' '}{t}\r\n".encode() for i, t in enumerate(lines))
    return Reply(code, tuple(lines), raw)


def hostile_run() -> RunResult:
    """A server whose banner is markup: one case passes, one fails on a 550."""
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    banner = reply(220, HOSTILE)
    ok = CaseResult(
        "greeting", PASSED, started_at=t0, duration=0.01, target="mx.example.test:25", peer="192.0.2.25:25",
        line=4,
        steps=[StepResult(1, 5, "expect", "banner", expected="220", reply=banner),
               StepResult(2, 6, "send", "QUIT", expected="221", reply=reply(221, "Bye"))],
        transcript=[Event(0.0, INFO, b"connected to 192.0.2.25:25"), Event(0.003, RECV, banner.raw),
                    Event(0.004, SEND, b"QUIT\r\n"), Event(0.006, RECV, b"221 Bye\r\n")],
    )
    refused = reply(550, "5.7.1 relaying denied")
    bad = CaseResult(
        "relay is refused", FAILED, started_at=t0, duration=0.02, target="mx.example.test:25",
        peer="192.0.2.25:25", line=8, reason="step 2: expected 250, got 550",
        steps=[StepResult(1, 9, "expect", "banner", expected="220", reply=banner),
               StepResult(2, 10, "send", "RCPT TO:<x@elsewhere.test>", status=FAILED, expected="250",
                          reply=refused, reason="expected 250, got 550")],
        transcript=[Event(0.003, RECV, banner.raw), Event(0.004, SEND, b"RCPT TO:<x@elsewhere.test>\x00\r\n"),
                    Event(0.02, RECV, refused.raw)],
    )
    plan = PlanResult("hostile banner", "plans/hostile.yaml", "name: hostile banner\n", "mx.example.test:25",
                      [ok, bad])
    return RunResult("0.1.0", t0, [plan], duration=0.05)


@pytest.fixture
def report(tmp_path) -> Path:
    return write_html_reports(hostile_run(), tmp_path / "reports")[0]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=90, check=False,
    )


def test_screenshot_renders(report, tmp_path):
    need(CHROMIUM, "chromium")
    shot = tmp_path / "report.png"
    result = chromium(tmp_path, f"--screenshot={shot}", report.as_uri())
    assert shot.is_file(), result.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1200, 900)
    assert len(png) > 20_000, "a blank page compresses to a few KB"


def test_dom_shows_summary_and_banner_as_text(report, tmp_path):
    need(CHROMIUM, "chromium")
    dom = chromium(tmp_path, "--dump-dom", report.as_uri()).stdout
    assert 'id="summary"' in dom and "hostile banner" in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "<script>alert" not in dom
    assert dom.count('<script type="application/json"') == 2 and dom.count("<script>") == 1  # data, and its own


class WebDriver:
    """Just enough of the W3C WebDriver protocol to open a page, find, click and read."""

    def __init__(self, driver: str, browser: str, profile: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.http = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.proc = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.call("GET", "/status")["ready"]:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("chromedriver did not start")
            time.sleep(0.1)
        options = {"binary": browser, "args": [*BROWSER_FLAGS, f"--user-data-dir={profile}"]}
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}}
        self.session = "/session/" + self.call("POST", "/session", caps)["sessionId"]

    def call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with self.http.open(request, timeout=60) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())["value"]  # a WebDriver error: {"error": ..., "message": ...}

    def do(self, method: str, path: str = "", body: dict | None = None):
        return self.call(method, self.session + path, body)

    def find(self, css: str) -> str:
        found = self.do("POST", "/element", {"using": "css selector", "value": css})
        assert ELEMENT in found, found
        return found[ELEMENT]

    def script(self, source: str):
        return self.do("POST", "/execute/sync", {"script": source, "args": []})

    def close(self) -> None:
        try:
            self.do("DELETE")
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def browser(tmp_path):
    need(CHROMIUM, "chromium")
    need(CHROMEDRIVER, "chromium-driver")
    driver = WebDriver(CHROMEDRIVER, CHROMIUM, tmp_path / "wd-profile")
    yield driver
    driver.close()


def test_summary_visible_cases_open_on_click_and_nothing_runs(report, browser):
    browser.do("POST", "/url", {"url": report.as_uri()})

    summary = browser.find("#summary")
    assert browser.do("GET", f"/element/{summary}/displayed") is True
    text = browser.do("GET", f"/element/{summary}/text")
    assert "FAILED" in text and "1\nPASSED" in text and "mx.example.test:25" in text

    failed = browser.find("#case-2")
    assert browser.do("GET", f"/element/{failed}/property/open") is True
    assert "expected 250, got 550" in browser.do("GET", f"/element/{browser.find('#case-2 .failure')}/text")

    passed = browser.find("#case-1")
    steps = browser.find("#case-1 table.steps")
    assert browser.do("GET", f"/element/{passed}/property/open") is False
    assert browser.do("GET", f"/element/{steps}/displayed") is False
    browser.do("POST", f"/element/{browser.find('#case-1 > summary')}/click")
    assert browser.do("GET", f"/element/{passed}/property/open") is True
    assert browser.do("GET", f"/element/{steps}/displayed") is True

    cell = browser.find("#case-1 table.steps tr:first-child td:nth-child(6)")
    assert browser.do("GET", f"/element/{cell}/text") == f"220 {HOSTILE}"
    assert browser.do("GET", "/alert/text").get("error") == "no such alert"
    scripts = browser.script("return [...document.scripts].map(s => s.type + ' ' + s.id)")
    assert scripts == ["application/json smtprun-summary", "application/json smtprun-data", " "]
    assert browser.script("return JSON.parse(document.getElementById('smtprun-data').textContent)"
                          ".plan.cases[0].steps[0].reply.lines[0]") == HOSTILE


OPEN_CASES = "return [...document.querySelectorAll('details.case')].map(d => d.open)"


def test_expand_all_opens_every_case_and_collapse_all_closes_them(report, browser):
    browser.do("POST", "/url", {"url": report.as_uri()})
    assert browser.script(OPEN_CASES) == [False, True]
    expand, collapse = browser.find("button[data-toggle=open]"), browser.find("button[data-toggle=close]")
    assert browser.do("GET", f"/element/{expand}/displayed") is True, "the page's own script ran under its CSP"

    browser.do("POST", f"/element/{expand}/click")
    assert browser.script(OPEN_CASES) == [True, True]
    assert browser.do("GET", f"/element/{browser.find('#case-1 table.steps')}/displayed") is True
    browser.do("POST", f"/element/{collapse}/click")
    assert browser.script(OPEN_CASES) == [False, False]
    assert browser.do("GET", f"/element/{browser.find('#case-2 .failure')}/displayed") is False


def ehlo_run() -> RunResult:
    """A stock Postfix's EHLO reply beside an expectation naming its keywords, and a 200-character token."""
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    keywords = ("PIPELINING", "SIZE 10240000", "VRFY", "ETRN", "STARTTLS", "ENHANCEDSTATUSCODES", "8BITMIME",
                "DSN", "SMTPUTF8", "CHUNKING")
    ehlo, blob = reply(250, "mail.example.test", *keywords), reply(334, "QUJD" * 50)
    case = CaseResult(
        "EHLO keywords", PASSED, started_at=t0, duration=0.02, target="mx.example.test:25", peer="192.0.2.25:25",
        line=4,
        steps=[StepResult(1, 5, "send", "EHLO client.example.test", reply=ehlo,
                          expected="250, keywords PIPELINING, SIZE, ENHANCEDSTATUSCODES, 8BITMIME, DSN, SMTPUTF8"),
               StepResult(2, 6, "send", "AUTH LOGIN", expected="334", reply=blob)],
        transcript=[Event(0.004, SEND, b"EHLO client.example.test\r\n"), Event(0.01, RECV, ehlo.raw)],
    )
    plan = PlanResult("EHLO", "plans/ehlo.yaml", "name: EHLO\n", "mx.example.test:25", [case])
    return RunResult("0.1.0", t0, [plan], duration=0.05)


# For each word of the first step's sent, expected and reply cells: how many lines it is laid out on.
WORD_LINES = """
const lines = {};
for (const cell of document.querySelectorAll('#case-1 table.steps tbody tr:first-child td.t')) {
  const text = cell.firstChild;
  for (const word of text.data.matchAll(/[A-Za-z0-9.]+/g)) {
    const range = document.createRange();
    range.setStart(text, word.index);
    range.setEnd(text, word.index + word[0].length);
    const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
    lines[word[0]] = Math.max(lines[word[0]] || 0, tops.size);
  }
}
return lines;
"""


def test_a_long_ehlo_reply_wraps_between_keywords_never_inside_one(tmp_path, browser):
    path = write_html_reports(ehlo_run(), tmp_path / "reports")[0]
    browser.do("POST", "/window/rect", {"width": 900, "height": 900})  # half a laptop screen
    browser.do("POST", "/url", {"url": path.as_uri()})
    browser.do("POST", f"/element/{browser.find('#case-1 > summary')}/click")

    lines = browser.script(WORD_LINES)
    assert lines["ENHANCEDSTATUSCODES"] == 1 and lines["client.example.test"] == 1, lines
    assert {word for word, n in lines.items() if n > 1} == set(), lines
    # the 200-character token still wraps: the table stays inside the case, the page does not scroll sideways
    table = browser.script("return document.querySelector('#case-1 table.steps').getBoundingClientRect().right")
    body = browser.script("return document.querySelector('#case-1 .body').getBoundingClientRect().right")
    assert table <= body
    assert browser.script("return document.documentElement.scrollWidth <= window.innerWidth") is True


def test_ten_thousand_cases_open_within_five_seconds(tmp_path, browser, capsys):
    path = write_html_reports(fleet_run(), tmp_path / "fleet")[0]
    browser.do("POST", "/url", {"url": "about:blank"})
    t0 = time.monotonic()
    browser.do("POST", "/url", {"url": path.as_uri()})  # returns once the page has loaded
    seconds = time.monotonic() - t0
    loaded = browser.script("return performance.getEntriesByType('navigation')[0].loadEventEnd / 1000")
    with capsys.disabled():
        print(f"\n10,000-case report ({path.stat().st_size / 1e6:.1f} MB): loaded in {loaded:.2f} s "
              f"({seconds:.2f} s through WebDriver)")
    assert seconds < 5.0

    summary = browser.do("GET", f"/element/{browser.find('#summary')}/text")
    assert "10,000 addresses, e.g. 127.0.1.1:40000" in summary
    failures = browser.find("table.rows.failed")
    assert browser.do("GET", f"/element/{failures}/displayed") is True
    assert browser.script("return document.querySelectorAll('table.rows.failed tbody tr').length") == 1000
    passed = browser.find("#passed")
    assert browser.do("GET", f"/element/{passed}/property/open") is False
    browser.do("POST", f"/element/{browser.find('#passed > summary')}/click")
    row = browser.find("#case-2")
    assert browser.do("GET", f"/element/{row}/displayed") is True
    assert browser.do("GET", f"/element/{row}/text").startswith("fleet @ 127.0.1.1:40001")
