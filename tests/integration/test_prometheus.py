"""A real Prometheus scrapes smtprun exporter, blackbox style, and its HTTP API shows what the probes found."""

from __future__ import annotations

import time

from tests.support.exporter import running_exporter
from tests.support.prometheus import EXPORTER_PORT, PROBE_PLAN, TARGETS, query, require_prometheus

SUCCESS = 'smtprun_probe_success{job="smtprun"}'
SMOKE = """\
name: smoke
target: {host: 127.0.0.1, port: 25, timeout: 5}
steps:
  - expect: 220
  - send: EHLO smtprun.test
    expect: 250
  - send: QUIT
    expect: 221
"""


def test_prometheus_sees_success_for_postfix_and_failure_for_a_dead_port(tmp_path, postfix):
    require_prometheus()
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / f"{PROBE_PLAN}.yaml").write_text(SMOKE)
    with running_exporter(plans, "--allow-target", "127.0.0.1:*", port=EXPORTER_PORT):
        started = time.time()
        seen: dict[str, str] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and set(seen) != set(TARGETS):
            time.sleep(0.5)
            fresh = f'{SUCCESS} and timestamp({SUCCESS}) > {started}'  # scraped since this exporter began
            seen = {r["metric"]["instance"]: r["value"][1] for r in query(fresh)}
        up = {r["metric"]["instance"]: r["value"][1] for r in query('up{job="smtprun"}')}
    assert seen == {"127.0.0.1:25": "1", "127.0.0.1:9": "0"}
    assert up == {"127.0.0.1:25": "1", "127.0.0.1:9": "1"}  # both scrapes answered; the probe failed, not the scrape
