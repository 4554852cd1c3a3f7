"""A real HTTPS server on loopback standing in for the MTA-STS policy hosts of the fixture domains
(tests/support/posture_zones.py's STS_ANSWERS): one threaded http.server, a trustme test CA, the answer chosen by the
Host the client asked for, a certificate from another, untrusted CA for `mta-sts.badcert.test` (by SNI).

    def test_policy(policy_server, dnsmasq_factory):
        dns = dnsmasq_factory(*sts_records(policy_server.address))
        ... expect_dns: {mta_sts: valid, cafile: policy_server.cafile, ...: policy_port: policy_server.port}

The policy hosts' A records point at the server's address; smtprun is told its port with `policy_port:` (443 is
the RFC's, and a test may not bind it).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from tests.support.posture_zones import STS_ANSWERS, STS_BADCERT_HOST, Answer

HOST = "127.0.0.1"


@dataclass(frozen=True)
class PolicyServer:
    address: str
    port: int
    cafile: Path  # the test CA the policy hosts' certificates chain to
    requests: list[str]  # "host path" of each request served, in order


class _Handler(BaseHTTPRequestHandler):
    server_version = "policyserver"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        self.server.requests.append(f"{host} {self.path}")  # type: ignore[attr-defined]
        answer = STS_ANSWERS.get(host) if self.path == "/.well-known/mta-sts.txt" else None
        answer = answer or Answer(404, "text/plain", b"not found\n")
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        for name, value in answer.headers:
            self.send_header(name, value)
        if answer.length:
            self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer.body)
        self.close_connection = True

    def log_message(self, *args: object) -> None:  # quiet: the requests list is the log
        pass


def _contexts(folder: Path) -> tuple[ssl.SSLContext, Path]:
    ca, stranger = trustme.CA(), trustme.CA()
    names = [host for host in STS_ANSWERS if host != STS_BADCERT_HOST]
    good = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(good)
    bad = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    stranger.issue_cert(STS_BADCERT_HOST).configure_cert(bad)

    def by_name(sock: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        if name == STS_BADCERT_HOST:
            sock.context = bad

    good.sni_callback = by_name  # type: ignore[assignment]
    cafile = folder / "policy-ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    return good, cafile


@pytest.fixture
def policy_server(tmp_path: Path) -> Iterator[PolicyServer]:
    """The HTTPS policy server on 127.0.0.1 and a free port, stopped after the test."""
    context, cafile = _contexts(tmp_path)
    httpd = ThreadingHTTPServer((HOST, 0), _Handler)
    httpd.daemon_threads = True
    httpd.requests = []  # type: ignore[attr-defined]
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, name="policy-server", daemon=True)
    thread.start()
    try:
        yield PolicyServer(HOST, httpd.server_address[1], cafile, httpd.requests)  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
