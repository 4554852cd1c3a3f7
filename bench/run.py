#!/usr/bin/env python3
"""smtprun side by side with swaks, smtp-source and a bare asyncio client, all against Postfix's smtp-sink.

    python bench/run.py [--quick] [--only N ...] [--out bench/results.json]

Seven measurements, on loopback only:

1. one small plan, whole process (start to exit): smtprun vs swaks, median of several runs; and 1′, the same
   with the HTML report written;
2. many sessions of the same plan, 20 in flight: smtprun --repeat vs smtp-source, plus a bare asyncio
   client doing the same dialogue with no checking (the floor a Python client on asyncio can reach), and
   smtprun with --workers (one process per CPU) beside the single process;
3. 200 targets of which 20 accept and never answer, 2 s timeout, 20 jobs: total wall time;
4. a 100 MB generated body (data_size): throughput and peak RSS (GNU time) vs smtp-source -l;
5. 10,000 --targets (1,000 silent), 500 jobs: whole-process time and peak RSS (bench/fleet.py's measure_fleet);
6. the same 10,000 as mx: domains whose MX and A records dnsmasq serves on a loopback port;
7. a TLS audit of one STARTTLS server (the test Postfix on 127.0.0.1:25, or --tls-server HOST:PORT): a plan of
   one `tls_offer` step vs `testssl --starttls smtp -p -E` (protocols and every cipher per protocol), whole
   process each; not in --quick unless asked with --only 7 (testssl.sh alone takes half a minute or more).

Measurement 2 also runs smtprun on the stock asyncio loop (SMTPRUN_EVENT_LOOP=asyncio) beside uvloop.

Prints each figure as it is measured, then a table, and writes everything to a JSON file. Exits 0 when
every measurement ran, whether or not it met its target; 1 when something could not run; 130 on Ctrl-C.
Every process started here is stopped before exit, on error and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
GNU_TIME = "/usr/bin/time"
SENDER, RECIPIENT, HELO = "a@bench.test", "b@bench.test", "bench.test"
BODY = "Subject: smtprun bench\n\nA small message for the benchmark.\n"
JOBS = 20
SESSIONS_RATIO = 0.45  # measurement 2: smtprun with a user's default settings / smtp-source, at least
REPLY_TIMEOUT = 2  # seconds, measurement 3
SILENT_EVERY = 10  # measurement 3: every 10th target accepts and never answers
MB = 1_000_000


@dataclass(frozen=True)
class Sizes:
    single_runs: int  # measurement 1: runs of each client (median taken)
    sessions: int  # measurement 2
    rounds: int  # measurement 2: rounds of each client (median taken)
    hosts: int  # measurement 3: loopback addresses, 20 targets each (18 live, 2 silent)
    body_mb: int  # measurement 4
    fleet: int  # measurements 5 and 6: --targets (a tenth of them silent), as addresses and as mx: domains


FULL = Sizes(single_runs=10, sessions=5000, rounds=5, hosts=10, body_mb=100, fleet=10_000)
QUICK = Sizes(single_runs=3, sessions=500, rounds=1, hosts=3, body_mb=10, fleet=1_000)
FLEET_JOBS = 500
FLEET_WALL = 12.0  # seconds, whole process, 10,000 targets (and fewer)
FLEET_RSS_MB = 300
FLEET_HTML_MB = 10.0  # the fleet's HTML report
FLEET_BROWSER_S = 3.0  # headless Chromium loading that report, whole process


class BenchError(Exception):
    """Something could not run: a tool is missing, a server did not start, a client failed."""


# -- processes ------------------------------------------------------------------------------------

class Processes:
    """Every long-running process started here; each is stopped (TERM, then KILL) on close."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "wb") as fh:
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs.clear()


@dataclass
class Ran:
    wall: float
    returncode: int
    stdout: str
    stderr: str


# Installed Python programs start from cached bytecode; an environment that forbids writing it
# (PYTHONDONTWRITEBYTECODE) would make every smtprun start compile its sources, which no user sees.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(argv: Sequence[str], timeout: float, ok: Callable[[int], bool] = lambda rc: rc == 0,
        env: dict[str, str] | None = None) -> Ran:
    """Run to completion within `timeout` seconds (the child is killed past it); wall time measured here."""
    t0 = time.perf_counter()
    try:
        done = subprocess.run(list(argv), cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                              check=False, env={**CHILD_ENV, **(env or {})})
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(argv)}: still running after {timeout:g}s, stopped") from None
    except OSError as exc:
        raise BenchError(f"{argv[0]}: {exc.strerror or exc}") from None
    wall = time.perf_counter() - t0
    ran = Ran(wall, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))
    if not ok(done.returncode):
        tail = (ran.stderr.strip() or ran.stdout.strip())[-1500:]
        raise BenchError(f"{' '.join(argv)}: exit status {done.returncode}\n{tail}")
    return ran


def free_port(hosts: Sequence[str]) -> int:
    """A TCP port that can be bound on every one of `hosts` right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = probe.getsockname()[1]
        try:
            for host in hosts[1:]:
                with socket.socket() as other:
                    other.bind((host, port))
        except OSError:
            continue
        return port
    raise BenchError(f"no TCP port free on all of {', '.join(hosts)}")


def wait_for_banner(host: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the listener at host:port greets with 220 (at most 5 s)."""
    deadline = time.monotonic() + 5
    for _ in range(100):
        if proc.poll() is not None:
            raise BenchError(f"smtp-sink on {host}:{port} exited ({proc.returncode}): {log.read_text().strip()}")
        try:
            with socket.create_connection((host, port), timeout=1) as conn:
                if conn.recv(512).startswith(b"220"):
                    conn.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    raise BenchError(f"smtp-sink on {host}:{port} did not greet within 5 s: {log.read_text().strip()}")


def start_sink(procs: Processes, host: str, port: int, work: Path) -> None:
    log = work / f"smtp-sink-{host}-{port}.log"
    proc = procs.start([SMTP_SINK, "-u", "nobody", f"{host}:{port}", "1000"], log)
    wait_for_banner(host, port, proc, log)


class Silent:
    """Listeners that accept connections and never send a byte; accepted sockets stay open until close()."""

    def __init__(self, endpoints: Sequence[tuple[str, int]]) -> None:
        self.selector = selectors.DefaultSelector()
        self.listeners: list[socket.socket] = []
        self.accepted: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        try:
            for endpoint in endpoints:
                sock = socket.socket()
                self.listeners.append(sock)
                sock.bind(endpoint)
                sock.listen(128)
                sock.setblocking(False)
                self.selector.register(sock, selectors.EVENT_READ)
        except OSError as exc:
            self.close()
            raise BenchError(f"cannot listen on {endpoint[0]}:{endpoint[1]}: {exc.strerror or exc}") from None
        self.thread = threading.Thread(target=self._accept, name="silent-listeners", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        deadline = time.monotonic() + 900  # never outlives the benchmark
        while not self.stop.is_set() and time.monotonic() < deadline:
            for key, _ in self.selector.select(timeout=0.1):
                with contextlib.suppress(BlockingIOError):
                    conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
                    self.accepted.append(conn)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        for sock in self.accepted + self.listeners:
            sock.close()
        self.selector.close()


# -- plans ----------------------------------------------------------------------------------------

def transaction_steps(body: str | None = None, size: str | None = None) -> str:
    """The 7 steps: banner, EHLO, MAIL, RCPT, DATA, body, QUIT."""
    if size is not None:
        body_step = f"  - data_size: {size}\n"
    else:
        indented = "".join(f"      {line}\n" if line else "\n" for line in (body or BODY).splitlines())
        body_step = "  - data: |\n" + indented
    return (
        "steps:\n"
        "  - expect: 220\n"
        f"  - send: \"EHLO {HELO}\"\n    expect: 250\n"
        f"  - send: \"MAIL FROM:<{SENDER}>\"\n    expect: 250\n"
        f"  - send: \"RCPT TO:<{RECIPIENT}>\"\n    expect: 250\n"
        "  - send: DATA\n    expect: 354\n"
        f"{body_step}    expect: 250\n"
        "  - send: QUIT\n    expect: 221\n"
    )


def write_plan(path: Path, name: str, target: str, steps: str, matrix: str = "") -> Path:
    path.write_text(f"name: {name}\ntarget: {target}\n{matrix}{steps}", encoding="utf-8")
    return path


# -- the bare asyncio floor -----------------------------------------------------------------------

class _Dialogue(asyncio.Protocol):
    """One session with no checking: on each complete reply (its last line has a space after the code), write the
    next command; after the reply to the last one, close."""

    def __init__(self, commands: Sequence[bytes], done: asyncio.Future[None]) -> None:
        self.commands, self.done = commands, done
        self.sent = 0
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.buf.endswith(b"\r\n"):
            return
        last = self.buf[self.buf.rfind(b"\n", 0, len(self.buf) - 1) + 1:]
        if last[3:4] == b"-":
            return
        self.buf = b""
        assert self.transport is not None
        if self.sent == len(self.commands):
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.transport.write(self.commands[self.sent])
        self.sent += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost after {self.sent} commands: {exc}"))


async def _floor(host: str, port: int, sessions: int, jobs: int) -> float:
    body = BODY.replace("\n", "\r\n").encode() + b".\r\n"
    commands = [f"EHLO {HELO}\r\n".encode(), f"MAIL FROM:<{SENDER}>\r\n".encode(),
                f"RCPT TO:<{RECIPIENT}>\r\n".encode(), b"DATA\r\n", body, b"QUIT\r\n"]
    loop = asyncio.get_running_loop()
    left = sessions

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            done: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_connection(functools.partial(_Dialogue, commands, done), host, port)
            try:
                await done
            finally:
                transport.close()

    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(min(jobs, sessions)))), timeout=300)
    return time.perf_counter() - t0


def bare_asyncio_floor(host: str, port: int, sessions: int, jobs: int) -> float:
    """Wall seconds for `sessions` 7-step dialogues, `jobs` in flight, reading each reply to its last line."""
    try:
        return asyncio.run(_floor(host, port, sessions, jobs))
    except (OSError, asyncio.TimeoutError) as exc:
        raise BenchError(f"bare asyncio client: {type(exc).__name__}: {exc}") from None


# -- measurements ---------------------------------------------------------------------------------

@dataclass
class Check:
    key: str  # its name in the JSON
    line: str  # the line printed when it is measured
    ok: bool | None  # None: for comparison only, no target
    row: tuple[str, str, str, str, str]  # the table: measurement, smtprun, reference, ratio, target
    data: dict[str, Any] = field(default_factory=dict)


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("OK" if ok else "MISSED")


def say(text: str) -> None:
    print(text, flush=True)


def smtprun_command() -> tuple[list[str], str]:
    script = shutil.which("smtprun")
    if script:
        return [script], f"console script {script}"
    return [sys.executable, "-m", "runner"], f"{sys.executable} -m runner (working tree {ROOT})"


def load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot read smtprun's JSON {path}: {exc}") from None


def interpreter(smtprun: list[str]) -> str:
    """The Python that runs smtprun: the console script's `#!` line, or the interpreter of `python -m runner`."""
    if len(smtprun) > 1:
        return smtprun[0]
    first = Path(smtprun[0]).read_bytes()[:500].split(b"\n", 1)[0]
    return first[2:].decode().strip().split()[0] if first.startswith(b"#!") else sys.executable


# What any Python tool that speaks SMTP with asyncio, reads YAML and renders HTML with Jinja2 imports before it
# does anything: measurement 1's floor, beside the bare interpreter's start.
FLOOR_IMPORTS = "import asyncio, ssl, yaml, jinja2.sandbox"


def measure_single(smtprun: list[str], plan: Path, port: int, runs: int, work: Path) -> list[Check]:
    """Measurement 1, and 1′: the same run writing its HTML report (into one folder, as a user's runs do);
    beside them the same interpreter starting and doing nothing, and importing FLOOR_IMPORTS."""
    swaks = ["swaks", "--server", f"127.0.0.1:{port}", "--to", RECIPIENT, "--from", SENDER, "--silent"]
    python = interpreter(smtprun)
    commands = {"smtprun": [*smtprun, str(plan), "--no-report"],
                "smtprun_report": [*smtprun, str(plan), "--report-dir", str(work / "reports")], "swaks": swaks,
                "python": [python, "-c", "pass"], "floor": [python, "-c", FLOOR_IMPORTS]}
    for argv in commands.values():
        run(argv, 60)  # warm-up: page cache, .pyc files, smtprun's cache folder
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):  # alternate, so drift hits all alike
        for name, argv in commands.items():
            times[name].append(run(argv, 60).wall)
    med = {k: statistics.median(v) for k, v in times.items()}
    checks = []
    for key, label, mark, target in (("smtprun", "1 plan, whole process", "1", 1.5),
                                     ("smtprun_report", "1 plan, whole process, HTML report written", "1′", 2.0)):
        ratio = med[key] / med["swaks"]
        ok = ratio <= target
        line = (f"{label} (median of {runs}): smtprun {med[key] * 1000:.0f} ms, "
                f"swaks {med['swaks'] * 1000:.0f} ms, ratio {ratio:.2f} (target ≤ {target}) {verdict(ok)}")
        data = {"runs": runs, "smtprun_s": times[key], "swaks_s": times["swaks"],
                "smtprun_median_s": med[key], "swaks_median_s": med["swaks"],
                "smtprun_min_s": min(times[key]), "swaks_min_s": min(times["swaks"]),
                "ratio_smtprun_over_swaks": ratio, "target": f"<= {target}"}
        row = (f"{label}, median of {runs}", f"{med[key] * 1000:.0f} ms", f"swaks {med['swaks'] * 1000:.0f} ms",
               f"{ratio:.2f}", f"≤ {target}")
        checks.append(Check("single" if mark == "1" else "single_report", line, ok, row, data))
    floor = med["floor"] / med["swaks"]
    line = (f"1 plan's floor (median of {runs}): {python} -c 'pass' {med['python'] * 1000:.0f} ms, "
            f"-c '{FLOOR_IMPORTS}' {med['floor'] * 1000:.0f} ms = {floor:.2f}× swaks")
    data = {"runs": runs, "python": python, "pass_s": times["python"], "floor_imports": FLOOR_IMPORTS,
            "floor_s": times["floor"], "pass_median_s": med["python"], "floor_median_s": med["floor"],
            "ratio_floor_over_swaks": floor}
    row = ("1 plan's floor: Python importing asyncio, ssl, yaml, Jinja2", f"{med['floor'] * 1000:.0f} ms",
           f"swaks {med['swaks'] * 1000:.0f} ms", f"{floor:.2f}", "-")
    checks.append(Check("single_floor", line, None, row, data))
    return checks


def measure_sessions(smtprun: list[str], plan: Path, port: int, sessions: int, rounds: int,
                     work: Path) -> list[Check]:
    """`rounds` rounds of smtprun, smtp-source and the floor, their order rotated each round so that neither
    going first nor what ran just before favours one; the median of each is reported."""
    out = work / "sessions.json"
    ours_rates: list[float] = []
    ours_walls: list[float] = []
    p50s: list[float] = []
    p99s: list[float] = []
    source_walls: list[float] = []
    floor_walls: list[float] = []

    stock_rates: list[float] = []
    workers_rates: list[float] = []
    ours_processes = 1
    workers_walls: list[float] = []

    def rate(env: dict[str, str] | None = None, extra: Sequence[str] = ()) -> tuple[float, Ran, dict[str, Any]]:
        ran = run([*smtprun, str(plan), "--repeat", str(sessions), "-j", str(JOBS), *extra, "--no-report", "--json",
                   str(out)], 600, ok=lambda rc: rc in (0, 1), env=env)
        load = load_json(out)["plans"][0]["cases"][0].get("load") or {}
        if load.get("sessions") != sessions or load.get("failed"):
            raise BenchError(f"smtprun --repeat {sessions}: {load.get('sessions')} sessions, "
                             f"{load.get('failed')} failed: {load.get('failures')}")
        return float(load["sessions_per_s"]), ran, load

    def ours() -> None:  # what a user gets: --workers auto
        nonlocal ours_processes
        got, ran, load = rate()
        ours_processes = load.get("processes", 1)
        ours_rates.append(got)
        ours_walls.append(ran.wall)
        p50s.append(load["session_p50"])
        p99s.append(load["session_p99"])

    def stock() -> None:  # one process on the stock asyncio loop instead of uvloop
        stock_rates.append(rate({"SMTPRUN_EVENT_LOOP": "asyncio"}, ["--workers", "1"])[0])

    def one() -> None:  # one process (--workers 1), where the default shares the sessions among one per CPU
        got, ran, _ = rate(extra=["--workers", "1"])
        workers_rates.append(got)
        workers_walls.append(ran.wall)

    def source() -> None:
        source_walls.append(run([SMTP_SOURCE, "-s", str(JOBS), "-m", str(sessions), "-f", SENDER, "-t", RECIPIENT,
                                 f"127.0.0.1:{port}"], 600).wall)

    def floor() -> None:
        floor_walls.append(bare_asyncio_floor("127.0.0.1", port, sessions, JOBS))

    clients = [ours, source, floor, stock, one]
    for i in range(rounds):
        k = i % len(clients)
        for client in clients[k:] + clients[:k]:
            client()
    med = statistics.median
    ours_rate, ours_wall = med(ours_rates), med(ours_walls)
    source_rate = sessions / med(source_walls)
    floor_rate = sessions / med(floor_walls)
    ratio = ours_rate / source_rate
    ok = ratio >= SESSIONS_RATIO
    of = f" (median of {rounds})" if rounds > 1 else ""
    line = (f"{sessions} sessions{of}: smtprun (default settings: {ours_processes} processes) {ours_rate:.0f}/s, "
            f"smtp-source {source_rate:.0f}/s, "
            f"ratio {ratio:.2f} (target ≥ {SESSIONS_RATIO}) {verdict(ok)}  "
            f"[smtprun whole process {ours_wall:.2f} s = {sessions / ours_wall:.0f}/s; "
            f"p50 {med(p50s) * 1000:.1f} ms, p99 {med(p99s) * 1000:.1f} ms]")
    floor_ratio = floor_rate / source_rate
    stock_rate = med(stock_rates)
    workers_rate, workers_wall = med(workers_rates), med(workers_walls)
    workers_line = (f"{sessions} sessions{of}: smtprun in one process (--workers 1) {workers_rate:.0f}/s, ratio "
                    f"{workers_rate / source_rate:.2f} (default settings: {ours_rate:.0f}/s, {ratio:.2f}); "
                    f"whole process {workers_wall:.2f} s (default settings: {ours_wall:.2f} s)")
    stock_line = (f"{sessions} sessions{of}: smtprun in one process on the stock asyncio loop "
                  f"(SMTPRUN_EVENT_LOOP=asyncio) {stock_rate:.0f}/s, ratio {stock_rate / source_rate:.2f}; "
                  f"uvloop gives {workers_rate / stock_rate:.2f}×")
    floor_line = (f"{sessions} sessions{of}: bare asyncio floor {floor_rate:.0f}/s, smtp-source {source_rate:.0f}/s, "
                  f"ratio {floor_ratio:.2f}; smtprun in one process reaches {workers_rate / floor_rate:.2f} "
                  "of the floor")
    return [
        Check("sessions", line, ok, (f"{sessions} sessions, {JOBS} in flight", f"{ours_rate:.0f}/s",
                                     f"smtp-source {source_rate:.0f}/s", f"{ratio:.2f}", f"≥ {SESSIONS_RATIO}"), {
            "sessions": sessions, "jobs": JOBS, "rounds": rounds,
            "smtprun_sessions_per_s": ours_rate, "smtprun_sessions_per_s_rounds": ours_rates,
            "smtprun_process_wall_s": ours_wall, "smtprun_process_wall_s_rounds": ours_walls,
            "smtprun_session_p50_s": med(p50s), "smtprun_session_p99_s": med(p99s),
            "smtp_source_sessions_per_s": source_rate, "smtp_source_wall_s_rounds": source_walls,
            "smtprun_processes": ours_processes,
            "ratio_smtprun_over_smtp_source": ratio, "target": f">= {SESSIONS_RATIO}"}),
        Check("sessions_stock_loop", stock_line, None, (f"{sessions} sessions, stock asyncio loop",
                                                          f"{stock_rate:.0f}/s", f"smtp-source {source_rate:.0f}/s",
                                                          f"{stock_rate / source_rate:.2f}", "-"), {
            "sessions": sessions, "jobs": JOBS, "rounds": rounds, "smtprun_stock_loop_sessions_per_s": stock_rate,
            "smtprun_stock_loop_sessions_per_s_rounds": stock_rates,
            "ratio_uvloop_over_stock_loop": workers_rate / stock_rate}),
        Check("sessions_workers", workers_line, None, (f"{sessions} sessions, one process (--workers 1)",
                                                        f"{workers_rate:.0f}/s", f"smtp-source {source_rate:.0f}/s",
                                                        f"{workers_rate / source_rate:.2f}", "-"), {
            "sessions": sessions, "jobs": JOBS, "rounds": rounds,
            "smtprun_one_process_sessions_per_s": workers_rate,
            "smtprun_one_process_sessions_per_s_rounds": workers_rates,
            "smtprun_one_process_wall_s": workers_wall, "smtprun_one_process_wall_s_rounds": workers_walls,
            "ratio_default_over_one_process": ours_rate / workers_rate,
            "ratio_one_process_over_smtp_source": workers_rate / source_rate}),
        Check("floor", floor_line, None, (f"{sessions} sessions, bare asyncio floor", f"(floor {floor_rate:.0f}/s)",
                                          f"smtp-source {source_rate:.0f}/s", f"{floor_ratio:.2f}", "-"), {
            "sessions": sessions, "jobs": JOBS, "rounds": rounds, "floor_sessions_per_s": floor_rate,
            "floor_wall_s_rounds": floor_walls,
            "ratio_floor_over_smtp_source": floor_ratio, "ratio_one_process_over_floor": workers_rate / floor_rate}),
    ]


def measure_targets(smtprun: list[str], procs: Processes, hosts_n: int, work: Path) -> Check:
    hosts = [f"127.0.0.{11 + i}" for i in range(hosts_n)]
    live_port, silent_port = free_port(hosts), 0
    for _ in range(20):
        silent_port = free_port(hosts)
        if silent_port != live_port:
            break
    for host in hosts:
        start_sink(procs, host, live_port, work)
    silent = Silent([(host, silent_port) for host in hosts])
    try:
        ports = ([live_port] * (SILENT_EVERY - 1) + [silent_port]) * 2  # 20 per host: 18 live, 2 silent
        matrix = (f"matrix:\n  host: [{', '.join(hosts)}]\n"
                  f"  port: [{', '.join(map(str, ports))}]\n")
        plan = write_plan(work / "targets.yaml", "bench targets",
                          f'{{host: "{{{{ host }}}}", port: "{{{{ port }}}}", timeout: {REPLY_TIMEOUT}}}',
                          transaction_steps(), matrix)
        run([*smtprun, "validate", str(plan)], 60)
        out = work / "targets.json"
        ours = run([*smtprun, str(plan), "--jobs", str(JOBS), "--no-report", "--json", str(out)], 120,
                   ok=lambda rc: rc in (0, 1))
    finally:
        silent.close()
    result = load_json(out)
    cases = [c for p in result["plans"] for c in p["cases"]]
    total, silent_n = len(cases), len(hosts) * 2
    passed = [c for c in cases if c["status"] == "passed"]
    failed = [c for c in cases if c["status"] == "failed"]
    timed_out = [c for c in failed if (c.get("reason") or "").endswith(f"no reply within {REPLY_TIMEOUT:g}s")
                 and (c.get("peer") or "").endswith(f":{silent_port}")]  # "target" keeps the template
    counts_ok = (total == len(hosts) * 20 and len(passed) == total - silent_n and len(failed) == silent_n
                 and len(timed_out) == silent_n)
    if not counts_ok:
        reasons = sorted({c.get("reason") or "" for c in failed})[:5]
        raise BenchError(f"{total} targets: expected {total - silent_n} passed and {silent_n} failed with "
                         f"'no reply within {REPLY_TIMEOUT:g}s', got {len(passed)} passed, {len(failed)} failed "
                         f"({len(timed_out)} timed out): {reasons}")
    ok = ours.wall <= 4.0
    line = (f"{total} targets, {silent_n} never answer, {REPLY_TIMEOUT} s timeout, {JOBS} jobs: "
            f"smtprun {ours.wall:.2f} s ({len(passed)} passed, {len(failed)} failed: timed out) "
            f"(target ≤ 4 s) {verdict(ok)}")
    row = (f"{total} targets, {silent_n} silent, {REPLY_TIMEOUT} s timeout", f"{ours.wall:.2f} s",
           f"(one timeout: {REPLY_TIMEOUT:.2f} s)", f"{ours.wall / REPLY_TIMEOUT:.2f}", "≤ 4 s")
    return Check("targets", line, ok, row, {
        "targets": total, "silent": silent_n, "timeout_s": REPLY_TIMEOUT, "jobs": JOBS,
        "hosts": hosts, "live_port": live_port, "silent_port": silent_port,
        "smtprun_wall_s": ours.wall, "smtprun_run_s": result["duration"], "passed": len(passed),
        "failed": len(failed), "failed_timed_out": len(timed_out),
        "failure_reason_example": failed[0]["reason"] if failed else None, "target": "<= 4 s"})


_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")


def peak_rss(ran: Ran) -> int:
    found = _RSS.search(ran.stderr)
    if not found:
        raise BenchError(f"no 'Maximum resident set size' in GNU time's output: {ran.stderr[-500:]}")
    return int(found[1]) * 1024


def measure_body(smtprun: list[str], plan: Path, port: int, body_mb: int, work: Path) -> list[Check]:
    size = body_mb * MB
    out = work / "body.json"
    ours = run([GNU_TIME, "-v", *smtprun, str(plan), "--no-report", "--json", str(out)], 600)
    case = load_json(out)["plans"][0]["cases"][0]
    step = next((s for s in case["steps"] if s["action"] == "data_size"), None)
    if case["status"] != "passed" or step is None:
        raise BenchError(f"smtprun {body_mb} MB body: {case['status']}: {case.get('reason')}")
    ours_rss = peak_rss(ours)
    ours_rate = size / step["duration"] / MB  # the body step: first byte to the 250 after the final dot
    # smtp-source -l counts payload bytes in 80-byte LF-ended lines; each line gains a CR on the wire.
    source = run([GNU_TIME, "-v", SMTP_SOURCE, "-l", str(size), "-m", "1", "-s", "1", "-f", SENDER, "-t", RECIPIENT,
                  f"127.0.0.1:{port}"], 600)
    source_bytes = size + size // 80
    source_rate = source_bytes / source.wall / MB
    source_rss = peak_rss(source)
    ratio = ours_rate / source_rate
    ok_rate, ok_rss = ratio >= 0.5, ours_rss < 64 * MB
    line = (f"{body_mb} MB body: smtprun {ours_rate:.0f} MB/s (body step {step['duration']:.2f} s; "
            f"whole process {ours.wall:.2f} s = {size / ours.wall / MB:.0f} MB/s), smtp-source {source_rate:.0f} MB/s "
            f"({source.wall:.2f} s), ratio {ratio:.2f} (target ≥ 0.5) {verdict(ok_rate)}")
    rss_line = (f"{body_mb} MB body: smtprun peak RSS {ours_rss / MB:.1f} MB (target < 64 MB) {verdict(ok_rss)}; "
                f"smtp-source {source_rss / MB:.1f} MB")
    return [
        Check("body", line, ok_rate, (f"{body_mb} MB body, throughput", f"{ours_rate:.0f} MB/s",
                                       f"smtp-source {source_rate:.0f} MB/s", f"{ratio:.2f}", "≥ 0.5"), {
            "bytes": size, "smtprun_body_step_s": step["duration"], "smtprun_process_wall_s": ours.wall,
            "smtprun_mb_per_s": ours_rate, "smtprun_process_mb_per_s": size / ours.wall / MB,
            "smtp_source_length": size, "smtp_source_wire_bytes_approx": source_bytes,
            "smtp_source_wall_s": source.wall, "smtp_source_mb_per_s": source_rate,
            "ratio_smtprun_over_smtp_source": ratio,
            "ratio_whole_process": (size / ours.wall) / (source_bytes / source.wall), "target": ">= 0.5"}),
        Check("body_rss", rss_line, ok_rss, (f"{body_mb} MB body, peak RSS", f"{ours_rss / MB:.1f} MB",
                                              f"smtp-source {source_rss / MB:.1f} MB",
                                              f"{ours_rss / source_rss:.2f}", "< 64 MB"), {
            "smtprun_peak_rss_bytes": ours_rss, "smtp_source_peak_rss_bytes": source_rss, "target": "< 64 MB"}),
    ]


def measure_fleets(targets: int) -> list[Check]:
    """bench/fleet.py's measurement: --targets against a responder, then the same as mx: domains via dnsmasq."""
    import fleet  # bench/fleet.py, beside this file

    checks = []
    for mx in (False, True):
        try:
            got = fleet.measure_fleet(targets, targets // 10, FLEET_JOBS, REPLY_TIMEOUT, mx=mx)
        except SystemExit as exc:
            raise BenchError(f"fleet of {targets}{' mx: domains' if mx else ''}: {exc}") from None
        counts = got["counts"]
        browser = got.get("browser_s")
        ok = (got["wall_s"] <= FLEET_WALL and got["peak_rss_mb"] <= FLEET_RSS_MB and got["html_mb"] <= FLEET_HTML_MB
              and (browser is None or browser <= FLEET_BROWSER_S))
        opened = ("not opened (no Chromium)" if browser is None else
                  f"opened by headless Chromium in {browser:.1f} s (a blank page {got['browser_blank_s']:.1f} s)")
        what = f"{targets:,} {'mx: domains (dnsmasq)' if mx else 'targets'}, {targets // 10:,} silent"
        line = (f"{what}, {REPLY_TIMEOUT} s timeout, {FLEET_JOBS} jobs: whole process {got['wall_s']:.1f} s "
                f"(run {got['run_s']:.1f} s, CPU {got['cpu_s']:.1f} s), peak RSS {got['peak_rss_mb']} MB; "
                f"{counts['passed']:,} passed, {counts['failed']:,} failed ({'; '.join(got['failure_reasons'][:3])}); "
                f"HTML {got['html_mb']} MB, {opened} {verdict(ok)}")
        row = (what, f"{got['wall_s']:.1f} s, {got['peak_rss_mb']} MB, HTML {got['html_mb']} MB"
               + ("" if browser is None else f" in {browser:.1f} s"), f"run {got['run_s']:.1f} s",
               "-", f"≤ {FLEET_WALL:g} s, ≤ {FLEET_RSS_MB} MB, ≤ {FLEET_HTML_MB:g} MB in ≤ {FLEET_BROWSER_S:g} s")
        checks.append(Check("fleet_mx" if mx else "fleet", line, ok, row, got))
    return checks


# -- 7: a TLS audit beside testssl.sh -------------------------------------------------------------

TLS_AUDIT_RATIO = 0.15  # smtprun's whole audit at most this share of testssl.sh's -p -E on the same server
TLS_PLAN = """\
steps:
  - expect: 220
  - send: EHLO bench.test
    expect: 250
  - tls_offer: {versions: [TLSv1, TLSv1.1, TLSv1.2, TLSv1.3], forbid: []}
    timeout: 300
"""


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.settimeout(5)
            return sock.recv(4).startswith(b"220")
    except OSError:
        return False


def measure_tls_audit(smtprun: list[str], server: str, work: Path) -> Check:
    """The same server scanned by smtprun (what a user gets: default --per-host) and by testssl.sh."""
    host, _, port = server.rpartition(":")
    what = f"TLS audit of {server}"
    if shutil.which("testssl") is None or not _answers(host.strip("[]"), int(port)):
        why = "testssl (Debian's testssl.sh) is not installed" if shutil.which("testssl") is None else \
            f"nothing answers 220 on {server}"
        return Check("tls_audit", f"{what}: not run: {why}", None, (what, "not run", why, "-", "-"))
    plan = write_plan(work / "tls.yaml", "bench TLS audit", f"{{host: '{host}', port: {port}, timeout: 60}}",
                      TLS_PLAN)
    ours = run([*smtprun, str(plan), "--no-report", "--json", str(work / "tls.json")], 600, ok=lambda rc: rc in (0, 1))
    step = load_json(work / "tls.json")["plans"][0]["cases"][0]["steps"][2]
    details = step.get("details") or {}
    if not details.get("versions"):  # a verdict on the chain or the offer is fine: the scan is what is timed
        raise BenchError(f"smtprun's TLS audit of {server} did not scan: {step.get('reason')}")
    theirs = run(["testssl", "--starttls", "smtp", "-p", "-E", "--quiet", "--color", "0", "--warnings", "off",
                  "--jsonfile", str(work / "testssl.json"), server], 900, ok=lambda rc: True)
    ratio = ours.wall / theirs.wall
    suites = sum(len(v) for v in (details.get("versions") or {}).values())
    line = (f"{what}: smtprun {ours.wall:.1f} s ({details.get('connections')} connections, {suites} suites in "
            f"{len(details.get('versions') or {})} versions), testssl.sh -p -E {theirs.wall:.1f} s, ratio {ratio:.3f} "
            f"(target ≤ {TLS_AUDIT_RATIO}) {verdict(ratio <= TLS_AUDIT_RATIO)}")
    row = (what, f"{ours.wall:.1f} s", f"testssl.sh {theirs.wall:.1f} s", f"{ratio:.3f}", f"≤ {TLS_AUDIT_RATIO}")
    return Check("tls_audit", line, ratio <= TLS_AUDIT_RATIO, row,
                 {"smtprun_s": round(ours.wall, 2), "testssl_s": round(theirs.wall, 2), "ratio": round(ratio, 4),
                  "connections": details.get("connections"), "suites": suites})


# -- driver ---------------------------------------------------------------------------------------

def require_tools() -> None:
    missing = [tool for tool in (SMTP_SINK, SMTP_SOURCE) if not os.access(tool, os.X_OK)]
    missing += [] if shutil.which("swaks") else ["swaks"]
    if not os.access(GNU_TIME, os.X_OK):
        missing.append(f"{GNU_TIME} (apt-get install -y time)")
    if missing:
        raise BenchError(f"missing: {', '.join(missing)}")
    if os.geteuid() != 0:
        raise BenchError("run as root: smtp-sink is started with -u nobody, which needs root")


def version_of(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), cwd=ROOT, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (done.stdout or done.stderr).decode(errors="replace").strip()
    return text.splitlines()[0] if text else "unknown"


def table(checks: Sequence[Check]) -> str:
    rows = [("measurement", "smtprun", "reference", "ratio", "target", "")]
    rows += [(*c.row, verdict(c.ok)) for c in checks]
    width = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, width, strict=True)).rstrip() for r in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def measure(args: argparse.Namespace, procs: Processes, work: Path) -> tuple[list[Check], dict[str, Any]]:
    sizes = QUICK if args.quick else FULL
    require_tools()
    smtprun, how = smtprun_command()
    meta = {
        "quick": args.quick, "sizes": sizes.__dict__, "smtprun_command": how,
        "smtprun": version_of([*smtprun, "--version"]), "swaks": version_of(["swaks", "--version"]),
        "postfix": version_of(["postconf", "-dh", "mail_version"]), "python": sys.version.split()[0],
        "platform": platform.platform(), "cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    say(f"smtprun: {how} ({meta['smtprun']}); swaks {meta['swaks']}; Postfix {meta['postfix']}; "
        f"Python {meta['python']}; {meta['cpus']} CPUs, load average {meta['loadavg_at_start'][0]:.2f}"
        f"{'; quick' if args.quick else ''}")
    port = free_port(["127.0.0.1"])
    start_sink(procs, "127.0.0.1", port, work)
    say(f"smtp-sink on 127.0.0.1:{port}")
    target = f"{{host: 127.0.0.1, port: {port}, timeout: 30}}"
    small = write_plan(work / "small.yaml", "bench transaction", target, transaction_steps())
    big = write_plan(work / "body.yaml", "bench body", f"{{host: 127.0.0.1, port: {port}, timeout: 120}}",
                     transaction_steps(size=f"{sizes.body_mb}MB"))
    run([*smtprun, "validate", str(small), str(big)], 60)

    checks: list[Check] = []
    steps: dict[str, Callable[[], Check | list[Check]]] = {
        "1": lambda: measure_single(smtprun, small, port, sizes.single_runs, work),
        "2": lambda: measure_sessions(smtprun, small, port, sizes.sessions, sizes.rounds, work),
        "3": lambda: measure_targets(smtprun, procs, sizes.hosts, work),
        "4": lambda: measure_body(smtprun, big, port, sizes.body_mb, work),
        "5": lambda: measure_fleets(sizes.fleet),  # and 6
        "7": lambda: measure_tls_audit(smtprun, args.tls_server, work),
    }
    for mark, step in steps.items():
        if (args.only and mark not in args.only) or (mark == "7" and args.quick and not args.only):
            continue
        got = step()
        for check in got if isinstance(got, list) else [got]:
            checks.append(check)
            say(check.line)
    return checks, meta


def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark smtprun against smtp-sink, beside swaks and smtp-source.")
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a fast check")
    parser.add_argument("--only", action="append", choices=("1", "2", "3", "4", "5", "7"),
                        help="run only this measurement (repeatable; 5 is 5 and 6)")
    parser.add_argument("--tls-server", default="127.0.0.1:25", metavar="HOST:PORT",
                        help="the STARTTLS server measurement 7 audits (default: the test Postfix)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json", help="the JSON results file")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    procs = Processes()
    try:
        with tempfile.TemporaryDirectory(prefix="smtprun-bench-") as tmp:
            try:
                checks, meta = measure(args, procs, Path(tmp))
            finally:
                procs.close()
    except BenchError as exc:
        print(f"bench: could not run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; every process started here is stopped", file=sys.stderr)
        return 130
    say("")
    say(table(checks))
    missed = [c.key for c in checks if c.ok is False]
    listed = f": {', '.join(missed)}" if missed else ""
    say(f"{sum(c.ok is True for c in checks)} targets met, {len(missed)} missed{listed}")
    meta["loadavg_at_end"] = os.getloadavg()
    results = {"meta": meta, "checks": [{"name": c.key, "line": c.line, "ok": c.ok, **c.data} for c in checks]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    say(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
