"""The Prometheus that scripts/env/prometheus.sh runs: where it answers, and the exporter port it scrapes."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

from tests.support.mtas import missing

PROMETHEUS = "http://127.0.0.1:19090"
EXPORTER_PORT = 19465  # its scrape config sends every probe here (scripts/env/prometheus.sh)
PROBE_PLAN = "smoke"  # the plan= parameter of those probes
TARGETS = ("127.0.0.1:25", "127.0.0.1:9")  # the test Postfix, and a port where nothing listens


def require_prometheus() -> str:
    """Prometheus's URL if it is ready; else skip, or fail when CI is set."""
    try:
        with urllib.request.urlopen(f"{PROMETHEUS}/-/ready", timeout=3) as answer:
            if answer.status == 200:
                return PROMETHEUS
    except OSError:
        pass
    missing(f"Prometheus does not answer on {PROMETHEUS}: run scripts/test-env.sh as root")
    return PROMETHEUS


def query(expression: str) -> list[dict[str, Any]]:
    """An instant query through the HTTP API: the result vector."""
    url = f"{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=5) as answer:
        body = json.load(answer)
    assert body["status"] == "success", body
    return body["data"]["result"]
