"""The fleet figures: one plan against 10,000 targets (`--targets`), 1,000 of which accept and never answer.

    python bench/fleet.py [--targets 10000] [--silent 1000] [--jobs 500] [--timeout 2]

A responder process listens on every target (loopback addresses 127.0.1.x, 100 ports each) and answers
a 3-step plan (banner, EHLO, QUIT); the silent targets accept and say nothing. smtprun runs under GNU
time for its peak RSS, writes --json and the HTML report; the figures are printed and written to
bench/results-fleet.json. Needs `ulimit -n` above the number of targets plus the jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORTS_PER_HOST = 100
BASE_PORT = 40000
PLAN = """\
name: fleet
target: {{port: 25, timeout: {timeout}}}
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--silent", type=int, default=1_000)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="smtprun-fleet-"))
    targets = work / "targets.txt"
    targets.write_text("".join(f"{h}:{p}\n" for h, p in endpoints(args.targets)))
    plan = work / "fleet.yaml"
    plan.write_text(PLAN.format(timeout=args.timeout))
    ready = work / "ready"
    proc = responder(args, ready)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the responder did not start")
            time.sleep(0.2)
        with socket.create_connection(endpoints(args.targets)[-1], timeout=5) as s:
            assert s.recv(64).startswith(b"220")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": ""}
        argv = ["/usr/bin/time", "-v", sys.executable, "-m", "runner", str(plan), "--targets", str(targets),
                "--jobs", str(args.jobs), "--json", str(work / "r.json"), "--report-dir", str(work / "html")]
        t0 = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)
        wall = time.monotonic() - t0
    finally:
        proc.terminate()
        proc.wait(10)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1]) * 1024
    result = json.loads((work / "r.json").read_text())
    html = next((work / "html").glob("fleet-*.html"))
    figures = {"targets": args.targets, "silent": args.silent, "jobs": args.jobs, "timeout_s": args.timeout,
               "exit_status": done.returncode, "wall_s": round(wall, 2), "run_s": round(result["duration"], 2),
               "peak_rss_mb": round(rss / 2**20), "counts": result["counts"],
               "json_mb": round((work / "r.json").stat().st_size / 2**20, 1),
               "html_mb": round(html.stat().st_size / 2**20, 1), "html": str(html)}
    print(json.dumps(figures, indent=2))
    (ROOT / "bench" / "results-fleet.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
