"""Every exit status and message README.md and docs/ quote, run as written (or an equivalent) on loopback servers.

One row per claim: the words as they stand in the document (the row fails when they change, so a changed
claim is re-checked), the command, the exit status and the texts the output shows. A new claim is one row.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from runner.tools.server import EmbeddedServer
from tests.support.cli import ROOT, run
from tests.support.faults import FaultServer

PASSING = "steps:\n  - expect: 220\n"
FAILING = "steps:\n  - expect: 554\n"  # every server greets with 220
TYPO = ("name: x\ntarget: {host: 127.0.0.1, port: {silent}}\nvars: {helo: a}\nsteps:\n" + "  - expect: 220\n" * 9
        + '  - sned: "EHLO {{ helo }}"\n')  # line 14, as the README's example
BARE_MAIL = ("target: {host: 127.0.0.1, port: 25}\nsteps:\n  - expect: 220\n  - send: EHLO a.test\n    expect: 250\n"
             '  - send: "MAIL FROM:Admin@test.com"\n    expect: 250\n')  # line 6, column 22: the README's warning
SEQUENTIAL = "target: {host: 127.0.0.1, port: {slow}}\nsequential: true\ncases:\n" + "".join(
    f"  - name: c{n}\n    steps:\n      - expect: 220\n      - send: EHLO a.test\n        expect: 250\n"
    for n in range(4))


@dataclass(frozen=True)
class Claim:
    id: str
    quote: str  # the document's words; line breaks and runs of spaces in it count as one space
    argv: tuple[str, ...]  # run in the test's folder; {tmp}, {root} and {SERVER} (its port) are filled in
    status: int
    shows: tuple[str, ...] = ()  # texts that standard output or standard error holds
    files: dict[str, str] = field(default_factory=dict)  # written first; a name ending in "/" is a folder
    before: tuple[tuple[str, ...], ...] = ()  # commands run first, for the files they write
    made: tuple[str, ...] = ()  # files that exist afterwards
    doc: str = "README.md"
    how: str = "run"  # in this process; "spawn": a process of its own, `typed` its standard input; "interrupt":
    # Ctrl-C once a session is open; "head": standard output closed after 3 lines
    typed: str = ""


CLAIMS = [
    # --- the exit status table -----------------------------------------------------------------------------------
    Claim("0-passed", "| 0 | every case passed", ("--embedded", "{root}/plans/exchange.yaml", "--no-report"), 0,
          ("2 passed in",)),
    Claim("0-valid", "(`validate`: every plan is valid)", ("validate", "{root}/plans/exchange.yaml"), 0,
          ("exchange.yaml: ok (2 cases)",)),
    Claim("1-wrong-reply", "| 1 | a case failed: wrong reply,", ("--embedded", "fail.yaml", "--no-report"), 1,
          ("expected 554, got 220", "0 passed, 1 failed"), {"fail.yaml": FAILING}),
    Claim("1-timeout", "| 1 | a case failed: wrong reply, timeout,", ("t.yaml", "--no-report"), 1,
          ("0 passed, 1 failed",), {"t.yaml": "target: {host: 127.0.0.1, port: {silent}, timeout: 0.5}\n" + PASSING}),
    Claim("1-refused", "connection refused or dropped", ("r.yaml", "--no-report"), 1,
          ("cannot connect to 127.0.0.1:2: Connection refused",),
          {"r.yaml": "target: {host: 127.0.0.1, port: 2}\n" + PASSING}),
    Claim("1-dropped", "connection refused or dropped", ("d.yaml", "--no-report"), 1, ("0 passed, 1 failed",),
          {"d.yaml": "target: {host: 127.0.0.1, port: {reset}}\n" + PASSING}),
    Claim("1-protocol", "dropped, protocol error |", ("p.yaml", "--no-report"), 1, ("0 passed, 1 failed",),
          {"p.yaml": "target: {host: 127.0.0.1, port: {long_line}}\n" + PASSING}),
    Claim("2-plan", "| 2 | a plan is invalid or the command line is wrong — nothing was sent anywhere |",
          ("plans/x.yaml", "--no-report"), 2, ("nothing was sent",), {"plans/x.yaml": TYPO}),
    Claim("2-command-line", "| 2 | a plan is invalid or the command line is wrong", ("p.yaml", "--jobs", "0"), 2,
          ("argument -j/--jobs: expected a whole number",), {"p.yaml": PASSING}),
    Claim("3-report-passed", "| 3 | smtprun could not do what was asked: a report could not be written (the results "
          "were still printed;", ("--embedded", "pass.yaml", "--report-dir", "reports"), 3,
          ("1 passed in", "smtprun: cannot write reports/index.html: Is a directory"),
          {"pass.yaml": PASSING, "reports/index.html/": ""}),
    Claim("3-report-failed", "3 even when a case failed, so the lost report does not hide behind the failure",
          ("--embedded", "fail.yaml", "--report-dir", "reports"), 3,
          ("0 passed, 1 failed", "smtprun: cannot write reports/index.html: Is a directory"),
          {"fail.yaml": FAILING, "reports/index.html/": ""}),
    Claim("3-serve", "or `serve` could not listen |", ("serve", "--port", "{silent}"), 3,
          ("cannot listen on 127.0.0.1:{silent}", "address already in use")),
    Claim("130", "| 130 | interrupted (Ctrl-C); what was gathered is reported |",
          ("h.yaml", "--report-dir", "reports"), 130, ("0 passed, 1 failed", "(interrupted)"),
          {"h.yaml": "target: {host: 127.0.0.1, port: {silent}, timeout: 60}\n" + PASSING},
          made=("reports/index.html",), how="interrupt"),
    Claim("141", "| 141 | standard output was closed by its reader (`smtprun -v PLAN \\| head -3`): the run stops at "
          "once, quietly, as a tool ended by SIGPIPE does (128 + 13); files asked for (`--json FILE`, the HTML "
          "report) are still written |", ("-v", "s.yaml", "--json", "r.json", "--report-dir", "reports"), 141,
          files={"s.yaml": SEQUENTIAL}, made=("r.json", "reports/index.html"), how="head"),
    # --- the command line ----------------------------------------------------------------------------------------
    Claim("compiler-error", "An invalid plan is reported like a compiler error: ```text\n"
          "plans/x.yaml:14:5: error: unknown key 'sned' in step\n"
          "      - sned: \"EHLO {{ helo }}\"\n"
          "        ^\n"
          "    hint: did you mean 'send'?\n"
          "smtprun: 1 problem found; nothing was sent\n```", ("plans/x.yaml",), 2,
          ("plans/x.yaml:14:5: error: unknown key 'sned' in step\n      - sned: \"EHLO {{ helo }}\"\n        ^\n"
           "    hint: did you mean 'send'?\nsmtprun: 1 problem found; nothing was sent\n",),
          {"plans/x.yaml": TYPO}),
    Claim("compiler-error-docs", "plans/x.yaml:14:5: error: unknown key 'sned' in step", ("plans/x.yaml",), 2,
          ("plans/x.yaml:14:5: error: unknown key 'sned' in step\n",), {"plans/x.yaml": TYPO},
          doc="docs/plan-format.md"),
    Claim("warning", "(`plans/x.yaml:6:22: warning: ...`) before the run, or by `validate`, which still exits 0",
          ("validate", "plans/x.yaml"), 0, ("plans/x.yaml:6:22: warning: ",), {"plans/x.yaml": BARE_MAIL}),
    Claim("warning-docs", "plans/x.yaml:6:22: warning: MAIL FROM without angle brackets: a strict server answers "
          "553 5.1.0 or 501 5.1.7 (RFC 5321 §4.1.2 wants \"<\" path \">\")", ("validate", "plans/x.yaml"), 0,
          ("plans/x.yaml:6:22: warning: MAIL FROM without angle brackets: a strict server answers 553 5.1.0 or 501 "
           "5.1.7 (RFC 5321 §4.1.2 wants \"<\" path \">\")\n      - send: \"MAIL FROM:Admin@test.com\"\n"
           "                         ^\n"
           "    hint: write MAIL FROM:<Admin@test.com>; smtprun sends the line as written\n",),
          {"plans/x.yaml": BARE_MAIL}, doc="docs/plan-format.md"),
    Claim("yaml-syntax-docs", "plans/x.yaml:8:22: error: YAML syntax: a value with ': ' in it must be quoted",
          ("validate", "plans/x.yaml"), 2,
          ("plans/x.yaml:8:22: error: YAML syntax: a value with ': ' in it must be quoted\n"
           "          - send: RCPT TO: alice@x NOTIFY=success,failure\n                         ^\n"
           "    hint: YAML reads 'TO:' as the start of another key: quote the whole value: "
           "- send: \"RCPT TO: alice@x NOTIFY=success,failure\"\n",),
          {"plans/x.yaml": "name: x\ntarget: {host: 127.0.0.1}\ncases:\n  - name: c\n    steps:\n      - expect: 220\n"
                           "      - send: EHLO a.test\n      - send: RCPT TO: alice@x NOTIFY=success,failure\n"},
          doc="docs/plan-format.md"),
    Claim("var-typo", "(exit 2: `smtprun: --var rctp: no variable 'rctp' in plans/postfix.yaml; did you mean 'rcpt'?`)",
          ("plans/postfix.yaml", "--var", "rctp=root@localhost", "--no-report"), 2,
          ("smtprun: --var rctp: no variable 'rctp' in plans/postfix.yaml; did you mean 'rcpt'?",),
          {"plans/postfix.yaml": (ROOT / "plans/postfix.yaml").read_text()}, doc="docs/command-line.md"),
    Claim("secret-unread", "A `--var` or `--secret` that no plan of the run declares or reads is an error (exit 2",
          ("--embedded", "p.yaml", "--secret", "nope=hunter2", "--no-report"), 2,
          ("smtprun: --secret nope: no variable 'nope' in p.yaml",), {"p.yaml": PASSING}, doc="docs/plan-format.md"),
    Claim("profile-alone", "`--profile` only means something with `--embedded`, and `--host`/`--port` nothing with "
          "it: either mistake is a usage error (exit 2)", ("p.yaml", "--profile", "postfix", "--host", "127.0.0.1"), 2,
          ("smtprun: --profile chooses the embedded server's answers",), {"p.yaml": PASSING},
          doc="docs/command-line.md"),
    Claim("host-embedded", "and `--host`/`--port` nothing with it: either mistake is a usage error (exit 2)",
          ("p.yaml", "--embedded", "--host", "127.0.0.1"), 2, ("smtprun: --host cannot be given with --embedded",),
          {"p.yaml": PASSING}, doc="docs/command-line.md"),
    Claim("json-folder", "a `--json` or `--junit` path that is a folder or cannot be written, or a `--report-dir` "
          "that is a file, is a usage error (exit 2) before the first session",
          ("--embedded", "p.yaml", "--json", "{tmp}", "--no-report"), 2,
          ("smtprun: --json {tmp}: cannot write there: a folder, not a file name",), {"p.yaml": PASSING},
          doc="docs/command-line.md"),
    Claim("report-dir-file", "(`smtprun: --report-dir /etc/passwd: cannot write there: not a folder`, exit 2)",
          ("--embedded", "p.yaml", "--report-dir", "/etc/passwd"), 2,
          ("smtprun: --report-dir /etc/passwd: cannot write there: not a folder\n",), {"p.yaml": PASSING},
          doc="docs/reports.md"),
    Claim("report-lost", "A report that fails once the run is over (a full disk) is said once, naming it and the "
          "reason, and the run exits 3, whether its cases passed or failed; the results are still printed.",
          ("--embedded", "fail.yaml", "--report-dir", "reports"), 3,
          ("0 passed, 1 failed", "smtprun: cannot write reports/index.html: Is a directory"),
          {"fail.yaml": FAILING, "reports/index.html/": ""}, doc="docs/reports.md"),
    Claim("workers-alone", "Without `--repeat`, `--workers` is a usage error.",
          ("p.yaml", "--host", "127.0.0.1", "--workers", "2", "--no-report"), 2,
          ("smtprun: --workers shares the sessions of load mode among processes: give it with --repeat N",),
          {"p.yaml": PASSING}, doc="docs/command-line.md"),
    Claim("source-run", "An address this machine does not have is refused before anything is sent: `--source` as a "
          "usage error (exit 2;", ("p.yaml", "--host", "127.0.0.1", "--port", "{silent}", "--source", "192.0.2.10"), 2,
          ("smtprun: --source 192.0.2.10: this machine cannot connect from it",), {"p.yaml": PASSING},
          doc="docs/command-line.md"),
    Claim("source-check", "`--source` as a usage error (exit 2; `check`: UNKNOWN)",
          ("check", "p.yaml", "-H", "127.0.0.1", "-p", "{silent}", "-S", "192.0.2.10"), 3,
          ("SMTP UNKNOWN - --source 192.0.2.10: this machine cannot connect from it",), {"p.yaml": PASSING},
          doc="docs/command-line.md"),
    Claim("source-plan", "`target.source` failing the case (`cannot use source address 192.0.2.10: Cannot assign "
          "requested address`)", ("s.yaml", "--no-report"), 1,
          ("cannot use source address 192.0.2.10: Cannot assign requested address", "0 passed, 1 failed"),
          {"s.yaml": "target: {host: 127.0.0.1, port: {silent}, source: 192.0.2.10}\n" + PASSING},
          doc="docs/command-line.md"),
    # --- smtprun check -------------------------------------------------------------------------------------------
    Claim("check-ok", "exit 0 OK,", ("check", "{root}/plans/exchange.yaml", "-H", "127.0.0.1", "-p", "{embedded}"),
          0, ("SMTP OK - ",), doc="docs/monitoring.md"),
    Claim("check-warning", "1 WARNING,", ("check", "{root}/plans/exchange.yaml", "-H", "127.0.0.1", "-p",
                                          "{embedded}", "-w", "0"), 1, ("SMTP WARNING - ", "(warning 0)"),
          doc="docs/monitoring.md"),
    Claim("check-critical", "$ smtprun check plans/starttls.yaml -H 127.0.0.1 -p 2 ; echo $? SMTP CRITICAL - 0/6 "
          "steps in 0.00s: STARTTLS: cannot connect to 127.0.0.1:2: Connection refused | time=0.004s;;;0 STARTTLS: "
          "cannot connect to 127.0.0.1:2: Connection refused 2", ("check", "{root}/plans/starttls.yaml", "-H",
                                                                  "127.0.0.1", "-p", "2"), 2,
          ("SMTP CRITICAL - 0/6 steps in ", ": STARTTLS: cannot connect to 127.0.0.1:2: Connection refused | time=",
           "\nSTARTTLS: cannot connect to 127.0.0.1:2: Connection refused\n"), doc="docs/monitoring.md"),
    Claim("check-unknown", "A plan that does not validate, a wrong option or a defect in smtprun is UNKNOWN with the "
          "plan error's `file:line:col` on the status line", ("check", "plans/x.yaml", "-H", "127.0.0.1"), 3,
          ("SMTP UNKNOWN - plans/x.yaml:14:5: error: unknown key 'sned' in step",), {"plans/x.yaml": TYPO},
          doc="docs/monitoring.md"),
    Claim("check-timeout", "when it runs out the check is CRITICAL, `... steps in 10.00s: timed out after 10s (-t)`",
          ("check", "h.yaml", "-H", "127.0.0.1", "-p", "{silent}", "-t", "1"), 2,
          ("SMTP CRITICAL - 0/1 steps in 1.", "s: timed out after 1s (-t)"), {"h.yaml": PASSING},
          doc="docs/monitoring.md"),
    Claim("check-var", "a `--var` the plan does not read is UNKNOWN, naming it",
          ("check", "p.yaml", "-H", "127.0.0.1", "-p", "{silent}", "--var", "nope=1"), 3,
          ("SMTP UNKNOWN - --var nope: no variable 'nope' in p.yaml",), {"p.yaml": PASSING}, doc="docs/monitoring.md"),
    # --- fleets --------------------------------------------------------------------------------------------------
    # --- record, the exporter -----------------------------------------------------------------------------------
    Claim("record-tls", "a handshake that fails ends the session (exit 1; for a certificate that does not verify, "
          "it says to give `--cafile PEM` or `--no-verify`), the plan written up to that step",
          ("record", "127.0.0.1:{postfix}", "--timeout", "5", "-o", "r.yaml"), 1,
          ("give --cafile PEM (the CA that issued the server's certificate) to trust it, or --no-verify",),
          made=("r.yaml",), how="spawn", typed="EHLO client.test\n/tls\nQUIT\n", doc="docs/command-line.md"),
    Claim("exporter-var", "a name that no plan in the folder reads is refused at start-up, exit 2",
          ("exporter", "--plans", "plans", "--listen", "127.0.0.1:{silent}", "--var", "nope=1"), 2,
          ("smtprun exporter: --var nope: no variable 'nope' in plans/p.yaml",), {"plans/p.yaml": PASSING},
          doc="docs/monitoring.md", how="spawn"),
    Claim("shard-failed", "A shard whose cases fail exits 1 after writing its `--json`",
          ("--embedded", "fail.yaml", "--shard", "1/1", "--json", "s.json", "--no-report"), 1,
          ("0 passed, 1 failed",), {"fail.yaml": FAILING}, made=("s.json",), doc="docs/fleets.md"),
    Claim("merge-failed", "`merge` exits 1 too when any merged case failed", ("merge", "s.json", "--no-report"), 1,
          ("0 passed, 1 failed",), {"fail.yaml": FAILING},
          before=(("--embedded", "fail.yaml", "--shard", "1/1", "--json", "s.json", "--no-report"),),
          doc="docs/fleets.md"),
    Claim("ctrl-c", "Ctrl-C stops the run, writes the report (marked interrupted) and exits 130",
          ("h.yaml", "--report-dir", "reports"), 130, ("(interrupted)",),
          {"h.yaml": "target: {host: 127.0.0.1, port: {silent}, timeout: 60}\n" + PASSING},
          made=("reports/index.html",), how="interrupt", doc="docs/security.md"),
]

SERVERS = {
    "embedded": EmbeddedServer,
    "silent": lambda: FaultServer("silent"),
    "slow": lambda: FaultServer("slow", delay=0.3),
    "reset": lambda: FaultServer("reset"),
    "long_line": lambda: FaultServer("long_line"),
}


class Places(dict):
    """{tmp}, {root}, and the port of each server a claim names ({silent}), started the first time it is named;
    {postfix} is the test Postfix (the claim is skipped without it)."""

    def __init__(self, tmp: Path, stack: contextlib.ExitStack, request: pytest.FixtureRequest) -> None:
        super().__init__(tmp=str(tmp), root=str(ROOT))
        self.stack, self.servers, self.request = stack, {}, request

    def __missing__(self, name: str) -> str:
        if name == "postfix":
            self[name] = str(self.request.getfixturevalue("postfix").port)
            return self[name]
        server = self.servers[name] = self.stack.enter_context(SERVERS[name]())
        self[name] = str(server.port)
        return self[name]

    def fill(self, text: str) -> str:
        known = (*SERVERS, "postfix")
        return re.sub(r"\{(\w+)\}", lambda m: self[m[1]] if m[1] in self or m[1] in known else m[0], text)


def prose(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_what_the_documents_say_is_what_smtprun_does(claim: Claim, tmp_path: Path, monkeypatch,
                                                     request: pytest.FixtureRequest) -> None:
    said = prose(claim.quote) in prose((ROOT / claim.doc).read_text())
    assert said, f"{claim.doc} no longer says: {claim.quote}"
    monkeypatch.chdir(tmp_path)
    with contextlib.ExitStack() as stack:
        places = Places(tmp_path, stack, request)
        for name, text in claim.files.items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            if name.endswith("/"):
                (tmp_path / name).mkdir()
            else:
                (tmp_path / name).write_text(places.fill(text))
        for argv in claim.before:
            run(*(places.fill(a) for a in argv))
        argv = [places.fill(a) for a in claim.argv]
        code, out, err = DRIVERS[claim.how](claim, argv, tmp_path, places)
    assert code == claim.status, out + err
    for text in claim.shows:
        assert places.fill(text) in out + err, out + err
    for name in claim.made:
        assert (tmp_path / name).exists(), f"{name} not written"


def _in_process(claim: Claim, argv: list[str], tmp: Path, places: Places) -> tuple[int, str, str]:
    return run(*argv)


def _own_process(claim: Claim, argv: list[str], tmp: Path, places: Places) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "runner", *argv], cwd=tmp, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          input=claim.typed, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def _spawn(argv: list[str], tmp: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "runner", *argv], cwd=tmp, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _interrupted(claim: Claim, argv: list[str], tmp: Path, places: Places) -> tuple[int, str, str]:
    """Ctrl-C once the silent server holds the session."""
    server = places.servers["silent"]
    proc = _spawn(argv, tmp)
    try:
        deadline = time.monotonic() + 20
        while server.accepted == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode, out, err


def _head(claim: Claim, argv: list[str], tmp: Path, places: Places) -> tuple[int, str, str]:
    """`smtprun ARGV | head -3`: the reader takes three lines and leaves while the run goes on."""
    proc = _spawn(argv, tmp)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        head = "".join(proc.stdout.readline() for _ in range(3))
        proc.stdout.close()
        err = proc.stderr.read()
        code = proc.wait(20)
    finally:
        proc.kill()
        proc.wait()
    return code, head, err


DRIVERS: dict[str, Any] = {"run": _in_process, "spawn": _own_process, "interrupt": _interrupted, "head": _head}
