"""target.proxy against Postfix's listener for a load balancer (smtpd_upstream_proxy_protocol = haproxy on
127.0.0.1:2541, scripts/env/postfix-listeners.sh): the client Postfix writes in the delivered copy's
`Received:` line is the one the header gave, for versions 1 and 2, IPv4 and IPv6."""

from __future__ import annotations

import json
import socket
import uuid

import pytest

from tests.support.cli import run, write_plan
from tests.support.mtas import (
    CA_PATH,
    HOSTNAME,
    POSTFIX,
    POSTFIX_PROXY_PORT,
    POSTFIX_PROXY_TLS_PORT,
    find_delivered,
    missing,
)

pytestmark = pytest.mark.postfix


def _listening(port: int) -> int:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        missing(f"no Postfix PROXY listener on 127.0.0.1:{port}: run scripts/test-env.sh as root")
    return port


@pytest.fixture
def proxy_port() -> int:
    return _listening(POSTFIX_PROXY_PORT)


def _received(message: bytes) -> str:
    """The first Received: header field, unfolded."""
    head = message.split(b"\n\n", 1)[0].decode("utf-8", "replace").replace("\n\t", " ").replace("\n ", " ")
    return next(line for line in head.splitlines() if line.startswith("Received:"))


@pytest.mark.parametrize(("version", "source", "destination", "client"), [
    (1, "203.0.113.7:4321", "192.0.2.1:25", "[203.0.113.7]"),
    (2, "203.0.113.9:4321", "192.0.2.1:25", "[203.0.113.9]"),
    (1, "[2001:db8::7]:4321", "[2001:db8::1]:25", "[IPv6:2001:db8::7]"),
    (2, "[2001:db8::9]:4321", "[::1]:25", "[IPv6:2001:db8::9]"),
])
def test_postfix_takes_the_client_from_the_header(proxy_port, tmp_path, version, source, destination, client):
    message_id = f"{uuid.uuid4().hex}@proxy.smtprun.test"
    plan = write_plan(tmp_path, f"""\
target:
  host: 127.0.0.1
  port: {proxy_port}
  timeout: 10
  proxy: {{version: {version}, source: "{source}", destination: "{destination}"}}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - send: "MAIL FROM:<proxy@smtprun.test>"
    expect: 250
  - send: "RCPT TO:<alice@smtprun.test>"
    expect: 250
  - send: DATA
    expect: 354
  - data: "Message-ID: <{message_id}>\\nSubject: behind a load balancer\\n\\nHello.\\n"
    expect: 250
  - send: QUIT
    expect: 221
""")
    code, out, err = run(plan, "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    delivered = find_delivered(POSTFIX, "alice", message_id)
    assert delivered is not None, "no message arrived in alice's Maildir"
    assert _received(delivered).startswith(f"Received: from client.smtprun.test (unknown {client})")
    transcript = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"][0]["transcript"]
    first_sent = next(e["data"] for e in transcript if e["dir"] == "C")
    if version == 1:
        assert first_sent.startswith("PROXY TCP")
    else:
        assert any(e["data"].startswith("PROXY protocol v2 header sent") for e in transcript if e["dir"] == "*")
        assert not first_sent.startswith("\r\n")  # the binary header is a note, in hex, not lines sent


@pytest.mark.parametrize("version", [1, 2])
def test_the_header_goes_before_the_tls_handshake(tmp_path, version):
    port = _listening(POSTFIX_PROXY_TLS_PORT)
    plan = write_plan(tmp_path, f"""\
target:
  host: 127.0.0.1
  port: {port}
  tls: implicit
  cafile: {CA_PATH}
  server_name: {HOSTNAME}
  timeout: 10
  proxy: {{version: {version}, source: "203.0.113.7:4321", destination: "192.0.2.1:465"}}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - send: QUIT
    expect: 221
""")
    code, out, err = run(plan, "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    case = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"][0]
    assert case["tls"]["version"].startswith("TLSv1.")
