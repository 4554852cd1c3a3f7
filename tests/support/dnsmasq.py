"""Real dnsmasq instances for integration tests: each on 127.0.0.1 with a free port, records from options.

    def test_mx(dnsmasq_factory):
        server = dnsmasq_factory("--mx-host=example.test,mx1.example.test,10",
                                 "--host-record=mx1.example.test,127.0.0.1",
                                 null_mx_rr("nullmx.test"), tlsa_rr("_25._tcp.mx1.example.test", 3, 1, 1, digest))
        config = ResolverConfig(nameservers=server.nameservers, timeout=2.0)

Nothing here touches a system-wide dnsmasq: no daemon, no pid file, no /etc/dnsmasq.conf, no /etc/hosts, no
upstream servers (--no-resolv), so every other name is refused. Names under `local` domains ("test" by default)
that have no record get NXDOMAIN. Without dnsmasq the test skips, or fails when CI=true.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest

START_TIMEOUT = 5.0  # seconds for dnsmasq to answer its first query
MISSING = "dnsmasq is not installed (apt-get install dnsmasq, or run scripts/test-env.sh as root)"


@dataclass(frozen=True)
class Dnsmasq:
    host: str
    port: int
    log: Path  # dnsmasq's own log, queries included

    @property
    def nameservers(self) -> tuple[tuple[str, int], ...]:
        return ((self.host, self.port),)


def tlsa_rr(name: str, usage: int, selector: int, mtype: int, data: bytes) -> str:
    """A --dns-rr option for a TLSA record (type 52; RDATA layout RFC 6698 §2.1)."""
    return f"--dns-rr={name},52,{bytes([usage, selector, mtype]).hex()}{data.hex()}"


def null_mx_rr(domain: str) -> str:
    """A --dns-rr option for a null MX, "0 ." (type 15: preference 0, the root name; RFC 7505 §3)."""
    return f"--dns-rr={domain},15,000000"


def dnsmasq_binary() -> str | None:
    """dnsmasq from PATH, or from /usr/sbin where Debian puts it (not in a non-root PATH)."""
    candidates = [shutil.which("dnsmasq"), "/usr/sbin/dnsmasq", "/sbin/dnsmasq"]
    return next((path for path in candidates if path and os.access(path, os.X_OK)), None)


def require_dnsmasq() -> str:
    """The dnsmasq binary; a missing one skips the test, or fails it in CI (CI=true)."""
    binary = dnsmasq_binary()
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return binary


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _answers(host: str, port: int) -> bool:
    query = dns.message.make_query("dnsmasq-ready.test.", "A")
    try:
        dns.query.udp(query, host, port=port, timeout=0.2)
    except (dns.exception.DNSException, OSError):
        return False
    return True


class DnsmasqRunner:
    """Starts dnsmasq processes and stops them all on close()."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1"):
        self.workdir = workdir
        self.host = host
        self.processes: list[subprocess.Popen] = []

    def start(self, *records: str, local: tuple[str, ...] = ("test",)) -> Dnsmasq:
        binary = require_dnsmasq()
        for attempt in range(5):  # another process may take the free port before dnsmasq binds it
            port = _free_port(self.host)
            log = self.workdir / f"dnsmasq-{port}.log"
            args = [binary, f"--port={port}", f"--listen-address={self.host}", "--bind-interfaces",
                    "--no-resolv", "--no-hosts", "--no-daemon", "--conf-file=/dev/null", "--log-facility=-",
                    "--log-queries", "--pid-file=", *(f"--local=/{domain}/" for domain in local), *records]
            with log.open("wb") as out:
                process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            self.processes.append(process)
            deadline = time.monotonic() + START_TIMEOUT
            while process.poll() is None and time.monotonic() < deadline:
                if _answers(self.host, port):
                    return Dnsmasq(self.host, port, log)
                time.sleep(0.05)
            output = log.read_text(errors="replace")
            self._stop(process)
            if "in use" not in output or attempt == 4:
                pytest.fail(f"dnsmasq did not answer on {self.host}:{port} (exit status {process.returncode}):\n"
                            f"{' '.join(args)}\n{output[-2000:]}")
        raise AssertionError("unreachable")

    def _stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def close(self) -> None:
        for process in self.processes:
            self._stop(process)
        self.processes.clear()


@pytest.fixture
def dnsmasq_factory() -> Iterator[Callable[..., Dnsmasq]]:
    """Call with dnsmasq record options (and optionally local=("test",)); every instance stops after the test."""
    require_dnsmasq()
    with tempfile.TemporaryDirectory(prefix="smtprun-dnsmasq-") as workdir:
        runner = DnsmasqRunner(Path(workdir))
        try:
            yield runner.start
        finally:
            runner.close()
