"""The fleet figures: one plan against 10,000 targets (`--targets`), 1,000 of which accept and never answer.

    python bench/fleet.py [--targets 10000] [--silent 1000] [--jobs 500] [--timeout 2] [--mx]

A responder process listens on every target (loopback addresses 127.0.1.x, 100 ports each) and answers
a 3-step plan (banner, EHLO, QUIT); the silent targets accept and say nothing. smtprun runs under GNU
time for its peak RSS, writes --json and the HTML report; the figures are printed and written to
bench/results-fleet.json. With --mx the targets are `mx:dN.fleet.test` domains whose MX and A records
a dnsmasq on a loopback port serves (the plan's `nameserver`), each domain its own mail host (so nothing is
shared: 30,000 queries); dnsmasq's own CPU seconds during the run are among the figures. bench/run.py calls
measure_fleet too.
Needs `ulimit -n` above the number of targets plus the jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query

ROOT = Path(__file__).resolve().parents[1]
PORTS_PER_HOST = 100
BASE_PORT = 40000
PLAN = """\
name: fleet
target: {{port: 25, timeout: {timeout}{nameserver}}}
steps:
  - expect: 220
  - send: EHLO bench.test
    expect: 250
  - send: QUIT
    expect: 221
"""


class _Answer(asyncio.Protocol):
    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        self.transport, self.buf = transport, b""
        transport.write(b"220 fleet.test ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n" in self.buf:
            line, self.buf = self.buf.split(b"\r\n", 1)
            if line.upper().startswith(b"QUIT"):
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            self.transport.write(b"250 fleet.test\r\n")


class _Silent(asyncio.Protocol):
    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        self.transport = transport  # kept open, never a byte


def endpoints(n: int) -> list[tuple[str, int]]:
    return [(f"127.0.{1 + i // (PORTS_PER_HOST * 250)}.{1 + (i // PORTS_PER_HOST) % 250}",
             BASE_PORT + i % PORTS_PER_HOST) for i in range(n)]


async def _respond(live: list[tuple[str, int]], silent: list[tuple[str, int]], ready: Path) -> None:
    loop = asyncio.get_running_loop()
    for group, protocol in ((live, _Answer), (silent, _Silent)):
        for host, port in group:
            await loop.create_server(protocol, host, port, backlog=64, reuse_address=True)
    ready.write_text("ready")
    await asyncio.sleep(900)


def responder(args: argparse.Namespace, ready: Path) -> subprocess.Popen[bytes]:
    code = (f"import sys, asyncio, pathlib; sys.path.insert(0, {str(ROOT / 'bench')!r}); import fleet; "
            f"e = fleet.endpoints({args.targets}); ready = pathlib.Path({str(ready)!r}); "
            f"asyncio.run(fleet._respond(e[{args.silent}:], e[:{args.silent}], ready))")
    return subprocess.Popen([sys.executable, "-c", code])


def start_dnsmasq(work: Path, ends: list[tuple[str, int]]) -> tuple[subprocess.Popen[bytes], int]:
    """dnsmasq on a free loopback port: domain dN.fleet.test has MX mxN.fleet.test, whose A is target N's address.
    Another process may take the free port before dnsmasq binds it: then it tries another, five times in all."""
    conf = work / "dnsmasq.conf"
    conf.write_text("".join(f"mx-host=d{i}.fleet.test,mx{i}.fleet.test,10\nhost-record=mx{i}.fleet.test,{host}\n"
                            for i, (host, _) in enumerate(ends)))
    binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    for _ in range(5):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        proc = subprocess.Popen([binary, f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces",
                                 "--no-resolv", "--no-hosts", "--no-daemon", "--conf-file=/dev/null", "--pid-file=",
                                 "--local=/test/", f"--conf-file={conf}", "--cache-size=0"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _answers(proc, port):
            return proc, port
        proc.kill()
        proc.wait(10)
    raise SystemExit("dnsmasq did not answer")


def _answers(proc: subprocess.Popen[bytes], port: int) -> bool:
    query = dns.message.make_query("d0.fleet.test.", "MX")
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5).answer:
                return True
        except (dns.exception.DNSException, OSError):
            pass
        time.sleep(0.2)
    return False


def _proc_cpu(pid: int) -> float:
    """User plus system CPU seconds a running process has used so far (proc(5): utime, stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu(time_output: str) -> float:
    """User plus system CPU seconds, from GNU time -v."""
    return sum(float(m[1]) for m in re.finditer(r"(?:User|System) time \(seconds\): ([\d.]+)", time_output))


def measure_fleet(targets: int = 10_000, silent: int = 1_000, jobs: int = 500, timeout: float = 2.0,
                  mx: bool = False, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One run of smtprun over the fleet; its figures. mx: the targets are `mx:` domains served by dnsmasq."""
    args = argparse.Namespace(targets=targets, silent=silent)
    work = Path(tempfile.mkdtemp(prefix="smtprun-fleet-"))
    ends = endpoints(targets)
    names = [f"mx:d{i}.fleet.test:{port}" if mx else f"{host}:{port}" for i, (host, port) in enumerate(ends)]
    (work / "targets.txt").write_text("".join(f"{name}\n" for name in names))
    plan = work / "fleet.yaml"
    ready = work / "ready"
    procs = [responder(args, ready)]
    try:
        nameserver = ""
        if mx:
            dnsmasq, port = start_dnsmasq(work, ends)
            procs.append(dnsmasq)
            nameserver = f", nameserver: '127.0.0.1:{port}'"
        plan.write_text(PLAN.format(timeout=timeout, nameserver=nameserver))
        deadline = time.monotonic() + 120
        while not ready.exists():
            if procs[0].poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the responder did not start")
            time.sleep(0.2)
        with socket.create_connection(ends[-1], timeout=5) as s:
            assert s.recv(64).startswith(b"220")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "", **(env or {})}
        argv = ["/usr/bin/time", "-v", sys.executable, "-m", "runner", str(plan),
                "--targets", str(work / "targets.txt"),
                "--jobs", str(jobs), "--json", str(work / "r.json"), "--report-dir", str(work / "html")]
        dns_cpu0 = _proc_cpu(procs[1].pid) if mx else 0.0
        t0 = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, check=False)
        wall = time.monotonic() - t0
        dns_cpu = _proc_cpu(procs[1].pid) - dns_cpu0 if mx else None
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if not found or not (work / "r.json").exists():
        raise SystemExit(f"smtprun did not finish ({done.returncode}): {done.stderr[-1000:]}")
    result = json.loads((work / "r.json").read_text())
    html = next((work / "html").glob("fleet-*.html"))
    cases = result["plans"][0]["cases"]
    reasons = sorted({c["reason"].split("): ")[-1] for c in cases if c["status"] == "failed"})
    figures = {"targets": targets, "silent": silent, "jobs": jobs, "timeout_s": timeout, "mx": mx,
               "exit_status": done.returncode, "wall_s": round(wall, 2), "run_s": round(result["duration"], 2),
               "peak_rss_mb": round(int(found[1]) / 1024), "cpu_s": round(_cpu(done.stderr), 2),
               "dnsmasq_cpu_s": None if dns_cpu is None else round(dns_cpu, 2),
               "load_average": [round(x, 2) for x in os.getloadavg()],
               "counts": result["counts"], "failure_reasons": reasons,
               "json_mb": round((work / "r.json").stat().st_size / 1e6, 1),
               "html_mb": round(html.stat().st_size / 1e6, 1), "html": str(html),
               **browser_figures(html, work)}
    return figures


CHROMIUM = os.environ.get("SMTPRUN_CHROMIUM", "/usr/bin/chromium")
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--dump-dom"]


def browser_figures(html: Path, work: Path) -> dict[str, Any]:
    """Headless Chromium's whole process loading the report until its DOM is dumped (the page parsed, laid out
    and its script run), beside the same for a blank page: what opening the report costs over the browser's own
    start. None where Chromium is not installed."""
    if not Path(CHROMIUM).exists():
        return {"browser_s": None, "browser_blank_s": None}

    def load(url: str) -> float:
        t0 = time.monotonic()
        subprocess.run([CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={work / 'chromium'}", url],
                       capture_output=True, timeout=120, check=False)
        return time.monotonic() - t0

    load("about:blank")  # the profile folder made, the binary in the page cache
    return {"browser_blank_s": round(load("about:blank"), 2), "browser_s": round(load(html.as_uri()), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--silent", type=int, default=1_000)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--mx", action="store_true", help="targets as mx: domains, resolved through dnsmasq")
    args = parser.parse_args()
    figures = measure_fleet(args.targets, args.silent, args.jobs, args.timeout, args.mx)
    print(json.dumps(figures, indent=2))
    (ROOT / "bench" / "results-fleet.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
