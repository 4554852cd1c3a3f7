"""One `expect_dns` step run in a plan against the embedded server, through a fixture dnsmasq: its JSON and what the
console said, as the posture tests read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.cli import run, write_plan


def run_dns_step(tmp_path: Path, port: int, dns: Any, options: str) -> tuple[int, dict, str]:
    """Run `expect_dns: {OPTIONS}` after the banner; (exit status, the step's JSON, stdout and stderr)."""
    plan = write_plan(tmp_path, "target: {host: 127.0.0.1}\nsteps:\n  - expect: 220\n"
                      f"  - expect_dns: {{{options}}}\n  - send: QUIT\n    expect: 221\n")
    report = tmp_path / "r.json"
    code, out, err = run(plan, "--port", str(port), "--nameserver", f"{dns.host}:{dns.port}",
                         "--json", str(report), "--no-report")
    step = json.loads(report.read_text())["plans"][0]["cases"][0]["steps"][1]
    return code, step, out + err
