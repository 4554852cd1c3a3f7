"""Fixtures for tests that talk to real servers on loopback: the embedded one, Postfix, a silent one, dnsmasq."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from runner.tools.server import EmbeddedServer
from tests.support.dnsmasq import dnsmasq_factory  # noqa: F401  (the fixture for DNS tests)
from tests.support.faults import FaultServer
from tests.support.mtas import banner

POSTFIX_HOST, POSTFIX_PORT = "127.0.0.1", 25
POSTFIX_BIN = Path("/usr/sbin/postfix")
POSTFIX_CA = Path("/etc/smtprun-test/ca.pem")  # written by scripts/test-env.sh
POSTFIX_HOSTNAME = "mail.smtprun.test"         # set by scripts/test-env.sh
POSTFIX_MISSING = f"Postfix not running on {POSTFIX_HOST}:{POSTFIX_PORT}: run scripts/test-env.sh as root"


@dataclass(frozen=True)
class PostfixServer:
    host: str
    port: int
    ca_path: Path


@dataclass(frozen=True)
class LoopbackCA:
    """A throwaway CA and a server certificate for localhost and 127.0.0.1."""

    ca: trustme.CA
    server_cert: trustme.LeafCert

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


def _postfix_answers() -> bool:
    line = banner(POSTFIX_HOST, POSTFIX_PORT)
    return line is not None and line.startswith("220") and "Postfix" in line


def _postfix_configured() -> bool:
    """Whether scripts/test-env.sh has set this machine's Postfix up (it may since have stopped)."""
    try:
        done = subprocess.run(["postconf", "-h", "myhostname"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.stdout.strip() == POSTFIX_HOSTNAME and POSTFIX_CA.exists()


def _start_postfix() -> bool:
    if os.geteuid() != 0 or not POSTFIX_BIN.exists() or not _postfix_configured():
        return False
    if subprocess.run([str(POSTFIX_BIN), "start"], capture_output=True, timeout=60).returncode != 0:
        return False  # e.g. already running, yet not answering
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _postfix_answers():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="session")
def postfix() -> PostfixServer:
    """Postfix on 127.0.0.1:25 as scripts/test-env.sh configures it; started here if only stopped."""
    if not (_postfix_answers() or _start_postfix()):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(POSTFIX_MISSING)
        pytest.skip(POSTFIX_MISSING)
    return PostfixServer(POSTFIX_HOST, POSTFIX_PORT, POSTFIX_CA)


@pytest.fixture(scope="session")
def test_ca() -> LoopbackCA:
    ca = trustme.CA()
    return LoopbackCA(ca, ca.issue_cert("localhost", "127.0.0.1"))


@pytest.fixture
def embedded() -> Iterator[EmbeddedServer]:
    """The embedded server, default profile, on a free loopback port."""
    with EmbeddedServer() as server:
        yield server


@pytest.fixture
def silent() -> Iterator[FaultServer]:
    """A server that accepts connections, counts them, and never says a word (a hung server)."""
    with FaultServer("silent") as server:
        yield server
