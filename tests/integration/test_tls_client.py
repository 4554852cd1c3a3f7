"""The client side of TLS a plan pins (runner/run/tlsclient.py): a client certificate to a Postfix that relays
for it alone, with swaks (--tls-cert/--tls-key) to the same listener as the reference; a version pinned below
what a server takes; a version and cipher pinned that a weak server takes; the SNI name sent, as a server
records it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run, write_plan
from tests.support.mtas import (
    CA_PATH,
    CLIENT_CERT,
    CLIENT_KEY,
    POSTFIX,
    POSTFIX_CLIENTCERT_PORT,
    POSTFIX_CLIENTCERT_TLS_PORT,
    missing,
    require_smtp,
)
from tests.support.tlsservers import sni_server, weak_server

RELAY = """\
target: {{host: 127.0.0.1, port: {port}, timeout: 10{target}}}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
{starttls}  - send: EHLO client.smtprun.test
    expect: 250
  - send: MAIL FROM:<probe@example.com>
    expect: 250
  - send: RCPT TO:<someone@example.org>
    expect: {code}
  - send: QUIT
    expect: 221
"""


def _listener(port: int) -> None:
    """Skip (fail in CI) unless the client-certificate listener on `port` is there (its twin speaks TLS first)."""
    require_smtp(POSTFIX)
    if not CLIENT_CERT.exists():
        missing(f"no test client certificate at {CLIENT_CERT}: run scripts/test-env.sh as root")
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError:
        missing(f"Postfix does not listen on 127.0.0.1:{port}: run scripts/test-env.sh as root")


def _relay_plan(tmp_path: Path, code: int, with_cert: bool, implicit: bool = False) -> str:
    """A relay to a foreign domain through the client-certificate listener; the files beside the plan."""
    for source in (CLIENT_CERT, CLIENT_KEY):
        shutil.copy(source, tmp_path / source.name)
    tls = f"cafile: {CA_PATH}, server_name: mail.smtprun.test"
    cert = ", cert: client.pem, key: client.key" if with_cert else ""
    if implicit:
        text = RELAY.format(port=POSTFIX_CLIENTCERT_TLS_PORT, target=f", tls: implicit, {tls}{cert}", starttls="",
                            code=code)
    else:
        text = RELAY.format(port=POSTFIX_CLIENTCERT_PORT, target="", code=code,
                            starttls=f"  - starttls: {{{tls}{cert}}}\n")
    return write_plan(tmp_path, text)


def _fingerprint() -> str:
    """The certificate's SHA-256 fingerprint as openssl prints it (and Postfix's relay_clientcerts lists it)."""
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(CLIENT_CERT)],
                         capture_output=True, text=True, check=True).stdout
    return out.strip().split("=", 1)[1]


def _case(path: Path) -> dict:
    return json.loads(path.read_text())["plans"][0]["cases"][0]


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
def test_postfix_relays_for_the_client_certificate(tmp_path, implicit):
    _listener(POSTFIX_CLIENTCERT_TLS_PORT if implicit else POSTFIX_CLIENTCERT_PORT)
    plan = _relay_plan(tmp_path, 250, with_cert=True, implicit=implicit)
    code, out, err = run(plan, "-v", "--no-report", "--json", str(tmp_path / "r.json"))
    assert code == 0, out + err
    case = _case(tmp_path / "r.json")
    assert case["tls"]["client_certificate"] == "commonName=client.smtprun.test"
    assert case["tls"]["client_certificate_sha256"] == _fingerprint()
    assert f"client certificate offered (sent when the server asks for one): commonName=client.smtprun.test, " \
           f"SHA-256 {_fingerprint()}" in out
    key = CLIENT_KEY.read_text()
    body = "".join(key.splitlines()[1:-1])
    assert body[:40] not in (tmp_path / "r.json").read_text() and body[:40] not in out  # the key is never shown


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
def test_postfix_refuses_to_relay_without_it(tmp_path, implicit):
    _listener(POSTFIX_CLIENTCERT_TLS_PORT if implicit else POSTFIX_CLIENTCERT_PORT)
    code, out, err = run(_relay_plan(tmp_path, 250, with_cert=False, implicit=implicit), "--no-report")
    assert code == 1, out + err
    assert "554 5.7.1 <someone@example.org>: Relay access denied" in out


def _swaks(*args: str) -> str:
    if shutil.which("swaks") is None:
        missing("swaks is not installed: run scripts/test-env.sh as root")
    done = subprocess.run(["swaks", "--server", f"127.0.0.1:{POSTFIX_CLIENTCERT_PORT}", "--tls",
                           "--from", "probe@example.com", "--to", "someone@example.org", "--quit-after", "RCPT",
                           "--helo", "client.smtprun.test", *args], capture_output=True, text=True, timeout=60)
    if "requires Net::SSLeay" in done.stdout + done.stderr:
        missing("swaks has no TLS (libnet-ssleay-perl): run scripts/test-env.sh as root")
    return done.stdout


@pytest.mark.parametrize("with_cert", [True, False], ids=["with certificate", "without"])
def test_swaks_gets_the_same_reply_to_the_relayed_recipient(tmp_path, with_cert):
    _listener(POSTFIX_CLIENTCERT_PORT)
    cert = ("--tls-cert", str(CLIENT_CERT), "--tls-key", str(CLIENT_KEY)) if with_cert else ()
    lines = _swaks(*cert).splitlines()
    after = lines[lines.index(" ~> RCPT TO:<someone@example.org>") + 1]  # "<~  250 2.1.5 Ok", "<~* 554 5.7.1 ..."
    code, _, _ = run(_relay_plan(tmp_path, 250, with_cert=with_cert), "--no-report", "--json",
                       str(tmp_path / "r.json"))
    rcpt = next(s for s in _case(tmp_path / "r.json")["steps"] if s["sent"] == "RCPT TO:<someone@example.org>")
    ours = f"{rcpt['reply']['code']} {rcpt['reply']['lines'][0]}"
    assert after[4:] == ours
    assert ours.startswith("250 2.1.5" if with_cert else "554 5.7.1")
    assert (code == 0) is with_cert


def test_a_version_the_server_refuses_fails_the_handshake_with_the_reason(tmp_path):
    _listener(POSTFIX_CLIENTCERT_PORT)  # smtpd_tls_protocols >=TLSv1.2
    plan = write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, port: {POSTFIX_CLIENTCERT_PORT}, timeout: 10}}
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - starttls: {{max_version: TLSv1.1, cafile: {CA_PATH}, server_name: mail.smtprun.test}}
""")
    code, out, _ = run(plan, "-v", "--no-report")
    assert code == 1
    assert "TLS versions offered: TLSv1 to TLSv1.1 (at OpenSSL security level 0" in out
    assert "TLS handshake failed: the server sent the TLS alert 'protocol version' " \
           "(TLSV1_ALERT_PROTOCOL_VERSION) (this client offered only max_version TLSv1.1)" in out
    theirs = subprocess.run(["swaks", "--server", f"127.0.0.1:{POSTFIX_CLIENTCERT_PORT}", "--tls",
                             "--tls-protocol", "tlsv1_1", "--quit-after", "EHLO"],
                            capture_output=True, text=True, timeout=60) if shutil.which("swaks") else None
    if theirs is not None:  # swaks --tls-protocol tlsv1_1 gets the same alert
        assert "alert protocol version" in theirs.stdout + theirs.stderr


def test_a_pinned_version_and_cipher_are_what_a_server_that_takes_them_negotiates(tmp_path):
    weak = weak_server(tmp_path)
    try:
        plan = write_plan(tmp_path, f"""\
target: {{host: localhost, port: {weak.server.port}, timeout: 10}}
cases:
  - name: tls11
    steps:
      - expect: 220
      - send: EHLO client.example.com
        expect: 250
      - starttls: {{verify: false, max_version: TLSv1.1}}
      - expect_tls: {{min_version: TLSv1.1}}
  - name: one cipher
    steps:
      - expect: 220
      - send: EHLO client.example.com
        expect: 250
      - starttls: {{verify: false, max_version: TLSv1.2, ciphers: AES128-SHA}}
""")
        code, out, err = run(plan, "--no-report", "--json", str(tmp_path / "r.json"))
    finally:
        weak.server.stop()
    assert code == 0, out + err
    cases = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"]
    assert cases[0]["tls"]["version"] == "TLSv1.1"
    assert (cases[1]["tls"]["version"], cases[1]["tls"]["cipher"]) == ("TLSv1.2", "AES128-SHA")


@pytest.mark.parametrize(("sni", "sent"), [
    (None, "localhost"),
    ("other.example", "other.example"),
    (False, None),
])
@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
def test_the_sni_name_reaches_the_server(tmp_path, sni, sent, implicit):
    server = sni_server(tmp_path, implicit)
    option = "" if sni is None else f", sni: {json.dumps(sni)}"
    tls = f"cafile: {server.cafile}{option}"
    steps = "  - expect: 220\n" if implicit else \
        f"  - expect: 220\n  - send: EHLO c.example\n    expect: 250\n  - starttls: {{{tls}}}\n"
    target = f"host: localhost, port: {server.server.port}" + (f", tls: implicit, {tls}" if implicit else "")
    plan = write_plan(tmp_path, f"target: {{{target}}}\nsteps:\n{steps}  - send: QUIT\n    expect: 221\n")
    try:
        code, out, err = run(plan, "-v", "--no-report", "--json", str(tmp_path / "r.json"))
    finally:
        server.server.stop()
    assert code == 0, out + err  # the certificate is still checked against localhost, and is valid for it
    assert server.names == [sent]
    facts = _case(tmp_path / "r.json")["tls"]
    assert facts["verified"] is True
    if sni is None:
        assert "sni" not in facts
    else:
        assert facts["sni"] == sent
        assert ("SNI sent: other.example" if sent else "no SNI sent") in out


def test_the_name_is_still_checked_when_another_sni_is_sent(tmp_path):
    server = sni_server(tmp_path)
    plan = write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, port: {server.server.port}}}
steps:
  - expect: 220
  - send: EHLO c.example
    expect: 250
  - starttls: {{cafile: {server.cafile}, server_name: wrong.example, sni: localhost}}
""")
    try:
        code, out, _ = run(plan, "--no-report")
    finally:
        server.server.stop()
    assert code == 1
    assert server.names == ["localhost"]
    assert "certificate verification failed: Hostname mismatch, certificate is not valid for 'wrong.example' " \
           "(its names: localhost, 127.0.0.1, mail.smtprun.test; SNI sent: localhost)" in out
