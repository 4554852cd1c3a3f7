"""A `dkim:` beside `data:` or `data_file:` (runner/run/dkimsign.py): the signature covers exactly the message the
server stores, whatever line ends the plan's body has, and the step says it signed. Whole cases against the
scripted peer; the key's DNS record is the one thing stood in for (dkimpy's dnsfunc)."""

from __future__ import annotations

import base64
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from runner.plan import read_plan
from runner.results import FAILED, PASSED
from tests.support.engine import BANNER, failed_step, run
from tests.support.peer import Expect, Say, ScriptedServer, body
from tests.support.validation import write

DOMAIN, SELECTOR = "example.com", "s2025"


@pytest.fixture(scope="module")
def key() -> tuple[bytes, bytes]:
    """A PEM private key, and the TXT record that would publish it at s2025._domainkey.example.com."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def stored(sent: bytes) -> bytes:
    """The message as the server stores it: what followed DATA, the terminator removed, dot-stuffing undone."""
    data = sent.split(b"DATA\r\n", 1)[1]
    assert data.endswith(b"\r\n.\r\n")
    lines = data[:-3].split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


def verifies(message: bytes, record: bytes) -> bool:
    def txt(name: bytes, timeout: int = 5) -> bytes:  # example.com's DNS, which the test stands in for
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else b""

    return bool(dkim.verify(message, dnsfunc=txt))


def case(tmp_path: Path, pem: bytes, body_step: str) -> object:
    (tmp_path / "dkim.pem").write_bytes(pem)
    return read_plan(write(tmp_path, f"""\
target: {{host: mx.peer.test, port: 25, timeout: 5}}
steps:
  - expect: 220
  - send: DATA
    expect: 354
{body_step}
    dkim: {{domain: {DOMAIN}, selector: "{{{{ selector }}}}", key: dkim.pem}}
    expect: 250
vars: {{selector: {SELECTOR}}}
"""))


def session() -> ScriptedServer:
    return ScriptedServer([BANNER, Expect(b"DATA\r\n"), Say(b"354 go\r\n"), body(), Say(b"250 2.0.0 Ok\r\n")])


# LF and CRLF line ends, a bare CR (sent as a line end), a line that starts with a dot (stuffed on the wire),
# trailing spaces and no line end at the very end: each would break a signature made over the plan's text
BODY = "From: a@example.com\nSubject: signed\r\n\nline one\r\n.a dot line\nx\ry  \nlast line"


def _yaml(text: str) -> str:
    """A YAML double-quoted scalar of text with its CR and LF escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n") + '"'


def test_a_signed_data_body_verifies_as_the_server_stores_it(tmp_path: Path, key) -> None:
    pem, record = key
    server = session()
    result = run(case(tmp_path, pem, "  - data: " + _yaml(BODY)), server)
    assert result.status == PASSED, result.reason
    message = stored(server.connections[0].sent)
    assert message.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com;")
    assert b"\r\n..a dot line\r\n" in server.connections[0].sent and b"\r\nx\r\ny  \r\nlast line\r\n" in message
    assert verifies(message, record)
    assert not verifies(message.replace(b"line one", b"line 1"), record)
    step = result.steps[2]
    assert step.label.endswith(f"DKIM-signed d={DOMAIN} s={SELECTOR})")
    notes = [e.data.decode() for e in result.transcript if e.direction == "*"]
    assert any(n.startswith(f"DKIM-signed: d={DOMAIN} s={SELECTOR}, over the ") for n in notes), notes


def test_a_signed_data_file_verifies_and_keeps_its_bytes(tmp_path: Path, key) -> None:
    pem, record = key
    (tmp_path / "m.eml").write_bytes(BODY.encode())
    server = session()
    result = run(case(tmp_path, pem, "  - data_file: m.eml"), server)
    assert result.status == PASSED, result.reason
    message = stored(server.connections[0].sent)
    assert verifies(message, record)
    assert message.split(b"\r\n", 1)[1].count(b"DKIM-Signature") == 0  # one field, on top
    assert result.steps[2].label == f"message body from {tmp_path}/m.eml, DKIM-signed d={DOMAIN} s={SELECTOR}"


def test_a_body_that_cannot_be_signed_fails_the_step_saying_why_and_sends_nothing(tmp_path: Path, key) -> None:
    server = ScriptedServer([BANNER, Expect(b"DATA\r\n"), Say(b"354 go\r\n")])
    result = run(case(tmp_path, key[0], '  - data: "Subject: no sender\\n\\nhello\\n"'), server)
    assert result.status == FAILED
    assert failed_step(result).reason == ("data: dkim: the message has no From field, which a signature must "
                                          "cover (RFC 6376 §5.4)")
    assert server.connections[0].sent == b"DATA\r\n"
