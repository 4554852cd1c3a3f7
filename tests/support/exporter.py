"""`smtprun exporter` run as its own process on a loopback port, for tests that scrape it."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from tests.support.cli import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningExporter:
    url: str
    process: subprocess.Popen[str]
    startup: str  # what it printed on standard error before it listened

    def get(self, path: str, headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, str, str]:
        """(status, content type, body) of GET path."""
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, answer.headers["Content-Type"], answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, parsed by prometheus_client's own parser."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@contextlib.contextmanager
def running_exporter(plans_dir, *argv: str, port: int | None = None) -> Iterator[RunningExporter]:
    port = port or free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "runner", "exporter", "--plans", str(plans_dir),
                                "--listen", f"127.0.0.1:{port}", *argv],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out = _wait_for(process, "listening on", 20)
        yield RunningExporter(f"http://127.0.0.1:{port}", process, out)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def _wait_for(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """Standard output and error until marker shows; an AssertionError if the process ends first.

    Read from the file descriptors, not the buffered streams: a line buffered there is never selected."""
    seen, deadline = b"", time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for stream in (process.stdout, process.stderr):
            sel.register(stream.fileno(), selectors.EVENT_READ)  # type: ignore[union-attr]
        while time.monotonic() < deadline:
            for key, _ in sel.select(0.2):
                seen += os.read(key.fd, 65536)
                if marker.encode() in seen:
                    return seen.decode()
            if process.poll() is not None:
                raise AssertionError(f"the exporter ended ({process.returncode}): {seen.decode()}")
    raise AssertionError(f"the exporter did not listen within {timeout}s: {seen.decode()}")
