"""What the comment at the top of each library plan (plans/*.yaml) says is true.

The table "On the test servers": a command (PORT, NAMESERVER to fill in), then one row per server,
`NAME [OPTIONS] → passes|fails[: why]`. Each row is run as a mail admin would run it, and must give that
verdict; the texts the why quotes "in double quotes" must be in the console output (-v: the transcript too),
and where it names cases `in backquotes`, those are exactly the cases that fail.
Every other command a header shows against this machine (127.0.0.1, localhost) or the embedded server is
run exactly as written, and passes, as the headers say.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import ROOT, run
from tests.support.mtas import ALL_SMTP_SERVERS, CERT_DIR, HOSTNAME, SmtpServer, banner, relay_port_held, require_smtp

pytestmark = pytest.mark.timeout(180)

PLANS = sorted((ROOT / "plans").glob("*.yaml"))
GENERIC = ("domain-mx", "exchange", "open-relay", "smuggling", "starttls", "submission-auth")
SERVERS = {server.name: server for server in ALL_SMTP_SERVERS}
TABLE_START = "# On the test servers"
ROW = re.compile(r"#   (?P<name>[a-z]+)(?P<options>(?: --[a-z-]+ \S+)*) +→ "
                 r"(?P<verdict>passes|fails)(?:: (?P<why>.*))?$")
# A resolver for domain-mx's NAMESERVER, with the records its header lists.
DNS_RECORDS = (f"--mx-host=smtprun.test,{HOSTNAME},10", f"--host-record={HOSTNAME},127.0.0.1",
               "--txt-record=smtprun.test,v=spf1 mx -all", "--txt-record=_dmarc.smtprun.test,v=DMARC1; p=reject")
# Rows whose verdict smtprun itself gets wrong today (not the server): (plan, row) -> why. None at present.
ENGINE_DEFECTS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Row:
    plan: str             # the plan's file name without .yaml
    line: int             # where the row is in the plan file
    command: tuple[str, ...]
    server: SmtpServer
    options: tuple[str, ...]
    passes: bool
    why: str

    @property
    def id(self) -> str:
        return f"{self.plan}-{self.server.name}{''.join(self.options).replace(' ', '')}"


def header(path: Path) -> list[str]:
    """The plan's leading comment lines."""
    lines = path.read_text().splitlines()
    return lines[:next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))]


def joined(lines: list[str], start: int) -> tuple[str, int]:
    """The command at lines[start] ("#   smtprun ..."), its continuation lines (ending "\\") joined, and the
    index of the line after it."""
    parts, index = [], start
    while True:
        text = lines[index][1:].strip()
        index += 1
        if not text.endswith("\\"):
            parts.append(text)
            return " ".join(parts), index
        parts.append(text[:-1].strip())


def rows(path: Path) -> list[Row]:
    """The rows of the plan's test-server table (none when it has no table)."""
    lines = header(path)
    start = next((i for i, line in enumerate(lines) if line.startswith(TABLE_START)), None)
    if start is None:
        return []
    index = next(i for i in range(start, len(lines)) if lines[i].startswith("#   smtprun "))
    command, index = joined(lines, index)
    found: list[Row] = []
    for number in range(index, len(lines)):
        match = ROW.match(lines[number])
        if match:
            found.append(Row(path.stem, number + 1, tuple(shlex.split(command)[1:]), SERVERS[match["name"]],
                             tuple(match["options"].split()), match["verdict"] == "passes", match["why"] or ""))
        elif found and lines[number].startswith("#       "):  # the why goes on
            last = found.pop()
            found.append(Row(last.plan, last.line, last.command, last.server, last.options, last.passes,
                             f"{last.why} {lines[number][1:].strip()}"))
    return found


TABLE = [row for path in PLANS for row in rows(path)]


def table_param(row: Row):
    defect = ENGINE_DEFECTS.get((row.plan, row.id))
    marks = [pytest.mark.xfail(strict=True, reason=defect)] if defect else []
    return pytest.param(row, id=row.id, marks=marks)


def test_every_generic_plan_has_a_row_for_each_of_the_seven_servers():
    for plan in GENERIC:
        named = {row.server.name for row in TABLE if row.plan == plan}
        assert named == set(SERVERS), (plan, set(SERVERS) - named)


def run_argv(argv: list[str], tmp_path: Path) -> tuple[int, dict[str, str], str]:
    """smtprun ARGV -v with a JSON report: (exit status, case name -> status, console output)."""
    report = tmp_path / "report.json"
    code, out, err = run(*argv, "-v", "--no-report", "--json", str(report))
    assert report.exists(), out + err
    every = [c for plan in json.loads(report.read_text())["plans"] for c in plan["cases"]]
    cases = {c["name"]: c["status"] for c in every}
    reasons = "".join(f"{c['name']}: {c['status']}: {c['reason']}\n" for c in every if c["status"] != "passed")
    return code, cases, out + err + ("\nnot passed:\n" + reasons if reasons else "")


@pytest.mark.parametrize("row", [table_param(row) for row in TABLE])
def test_each_row_of_a_plans_test_server_table_is_the_verdict(row: Row, tmp_path, dnsmasq_factory, monkeypatch):
    require_smtp(row.server)
    monkeypatch.chdir(ROOT)  # the command names the plan as plans/NAME.yaml
    fill = {"PORT": str(row.server.port)}
    if "NAMESERVER" in row.command:
        dns = dnsmasq_factory(*DNS_RECORDS)
        fill["NAMESERVER"] = f"{dns.host}:{dns.port}"
    argv = [fill.get(arg, arg) for arg in row.command] + list(row.options)
    code, cases, out = run_argv(argv, tmp_path)
    where = f"plans/{row.plan}.yaml:{row.line}: {' '.join(argv)}\n{out[-6000:]}"  # the reasons come last
    failed = {name for name, status in cases.items() if status != "passed"}
    if row.passes:
        assert code == 0 and not failed, where
    else:
        assert code == 1 and failed, where
    for quoted in re.findall(r'"([^"]+)"', row.why):
        assert quoted in out, f"{quoted!r} not in the output of {where}"
    named = set(re.findall(r"`([^`]+)`", row.why))
    if named:
        assert failed == named, where


# --- every other command the headers show, run exactly as written -------------------------------------

LOCAL_HOSTS = ("127.0.0.1", "localhost")
EXAMPLE_HOSTS = re.compile(r"(^|\.)(example\.(com|org|net)|contoso\.com)$")


@dataclass(frozen=True)
class Command:
    plan: str
    line: int
    text: str
    server: str | None = None  # a `smtprun serve ... &` started first (the line before)

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text, comments=True)[1:]


def commands(path: Path) -> list[Command]:
    """The smtprun commands of the header outside its test-server table."""
    lines = header(path)
    end = next((i for i, line in enumerate(lines) if line.startswith(TABLE_START)), len(lines))
    found: list[Command] = []
    index, serve = 0, None
    while index < end:
        if not lines[index].startswith("#   smtprun "):
            index += 1
            continue
        line = index + 1
        text, index = joined(lines, index)
        if text.endswith("&"):
            serve = text[:-1].strip()
            continue
        found.append(Command(path.stem, line, text, serve))
        serve = None
    return found


def target(command: Command) -> str | None:
    """The host the command connects to: --host's (without a port), 'embedded', or None (an MX from DNS)."""
    argv = command.argv
    if "--embedded" in argv:
        return "embedded"
    if "--host" not in argv:
        return None
    host = argv[argv.index("--host") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


COMMANDS = [command for path in PLANS for command in commands(path)]
RUNNABLE = [c for c in COMMANDS if target(c) in (*LOCAL_HOSTS, "embedded")]


def test_the_commands_not_run_here_are_for_example_hosts():
    """A header command that names neither this machine nor the embedded server is an example for the
    reader's own server: its host (or MX domain) is a documentation name, never a real one."""
    for command in COMMANDS:
        if command in RUNNABLE:
            continue
        argv = command.argv
        host = target(command) or argv[argv.index("--var") + 1].split("=", 1)[1]
        assert EXAMPLE_HOSTS.search(host), f"plans/{command.plan}.yaml:{command.line}: {command.text}"
    assert len(RUNNABLE) >= 12


def test_every_library_plan_shows_a_command_that_is_run_here():
    run_here = {c.plan for c in RUNNABLE} | {row.plan for row in TABLE}
    assert run_here == {path.stem for path in PLANS}


def start_serve(text: str, workdir: Path) -> subprocess.Popen:
    """`smtprun serve ...` from a header, in workdir (which has the test certificate as server.pem,
    server.key and ca.pem, as the header's relative names want), until its port answers."""
    argv = shlex.split(text)[1:]
    port = int(argv[argv.index("--port") + 1])
    if banner("127.0.0.1", port, timeout=1.0, tries=1) is not None:
        pytest.fail(f"127.0.0.1:{port}, which the header's `{text}` listens on, is taken")
    process = subprocess.Popen([sys.executable, "-m", "runner", *argv], cwd=workdir, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while banner("127.0.0.1", port, timeout=1.0, tries=1) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"`{text}` did not answer: {process.communicate()[0].decode(errors='replace')[-2000:]}")
        time.sleep(0.1)
    return process


@pytest.mark.parametrize("command", RUNNABLE, ids=[f"{c.plan}:{c.line}" for c in RUNNABLE])
def test_each_header_command_for_this_machine_passes_as_written(command: Command, tmp_path, monkeypatch):
    for name in ("server.pem", "server.key", "ca.pem"):
        shutil.copy(CERT_DIR / name, tmp_path / name)
    (tmp_path / "plans").symlink_to(ROOT / "plans")  # the command names plans/NAME.yaml
    monkeypatch.chdir(tmp_path)
    port = next((int(command.argv[i + 1]) for i, a in enumerate(command.argv) if a == "--port"), None)
    served = [server for server in ALL_SMTP_SERVERS if server.port == port or (port is None and server.port == 25)]
    if command.server is None and target(command) != "embedded" and served:
        require_smtp(served[0])
    serve = start_serve(command.server, tmp_path) if command.server else None
    try:
        with relay_port_held() if command.plan == "outbound" else contextlib.nullcontext():
            code, cases, out = run_argv(command.argv, tmp_path)
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(timeout=10)
    assert code == 0 and all(s == "passed" for s in cases.values()), \
        f"plans/{command.plan}.yaml:{command.line}: {command.text}\n{out[-4000:]}"

