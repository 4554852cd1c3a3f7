"""STARTTLS, implicit TLS and AUTH plans against the embedded server with a test CA."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
import trustme

from runner.tools.server import EmbeddedServer, ServerAuth, ServerTls
from tests.support.cli import ROOT, run, write_plan
from tests.support.faults import FaultServer

PASSWORD = "s3cret-Pa55"


@pytest.fixture(scope="module")
def ca_files(tmp_path_factory):
    """A CA, and PEM files for a good, an expired and a wrong-name certificate, plus an unknown CA."""
    d = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)
    certs = {
        "good": ca.issue_cert("localhost", "127.0.0.1"),
        "expired": ca.issue_cert("localhost", "127.0.0.1", not_before=past - dt.timedelta(days=30), not_after=past),
        "wrong-name": ca.issue_cert("other.example"),
        "unknown-ca": trustme.CA().issue_cert("localhost", "127.0.0.1"),
    }
    for name, cert in certs.items():
        cert.private_key_and_cert_chain_pem.write_to_path(str(d / f"{name}.pem"))
    return d


def tls_server(ca_files: Path, cert: str = "good", implicit: bool = False, auth: ServerAuth | None = None
               ) -> EmbeddedServer:
    from runner.tools.server import server_tls_context

    return EmbeddedServer(tls=ServerTls(server_tls_context(str(ca_files / f"{cert}.pem")), implicit), auth=auth)


def test_starttls_plan_passes_with_the_test_ca(ca_files, tmp_path):
    with tls_server(ca_files) as server:
        code, out, err = run(str(ROOT / "plans/starttls.yaml"), "--host", "localhost", "--port", str(server.port),
                             "--var", f"cafile={ca_files / 'ca.pem'}", "--json", str(tmp_path / "r.json"),
                             "--no-report")
    assert code == 0, out + err
    case = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"][0]
    assert case["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert case["tls"]["verified"] is True and "localhost" in case["tls"]["san"]
    assert case["tls"]["days_left"] > 14


@pytest.mark.parametrize(("cert", "reason"), [
    ("expired", "certificate has expired"),
    ("wrong-name", "Hostname mismatch"),
    ("unknown-ca", "unable to get local issuer certificate"),
])
def test_starttls_fails_on_a_bad_certificate(ca_files, cert, reason):
    with tls_server(ca_files, cert) as server:
        code, out, _ = run(str(ROOT / "plans/starttls.yaml"), "--host", "localhost", "--port", str(server.port),
                           "--var", f"cafile={ca_files / 'ca.pem'}", "--no-report")
    assert code == 1
    assert "certificate verification failed" in out and reason in out


def test_verify_false_reports_facts_of_an_unverified_certificate(ca_files, tmp_path):
    plan = write_plan(tmp_path, """\
target: {host: localhost, timeout: 5}
steps:
  - expect: 220
  - send: EHLO test
    expect: 250
  - starttls: {verify: false}
  - expect_tls: {verified: false, name: localhost}
  - expect_tls: {days_valid: 0}
""")
    with tls_server(ca_files, "expired") as server:
        code, out, _ = run(plan, "--port", str(server.port), "--no-report")
    assert code == 1
    assert "step 5" in out and "certificate expires in -" in out


def test_implicit_tls(ca_files, tmp_path):
    plan = write_plan(tmp_path, f"""\
target: {{host: localhost, tls: implicit, cafile: "{ca_files / 'ca.pem'}", timeout: 5}}
steps:
  - expect: 220
  - expect_tls: {{name: localhost, min_version: TLSv1.2}}
  - send: EHLO test
    expect: {{code: 250, absent: [STARTTLS]}}
  - send: QUIT
    expect: 221
""")
    with tls_server(ca_files, implicit=True) as server:
        code, out, err = run(plan, "--port", str(server.port), "--no-report")
    assert code == 0, out + err


def test_starttls_trusts_the_target_s_cafile_and_expect_tls_bounds_the_version(ca_files, tmp_path):
    """A private CA written once under target: serves the starttls step that names none; max_version fails a
    session above it, naming both."""
    plan = write_plan(tmp_path, f"""\
target: {{host: localhost, cafile: "{ca_files / 'ca.pem'}", timeout: 5}}
cases:
  - name: pinned
    steps:
      - expect: 220
      - send: EHLO test
        expect: 250
      - starttls: {{max_version: TLSv1.2}}
      - expect_tls: {{verified: true, min_version: TLSv1.2, max_version: TLSv1.2}}
  - name: newest
    steps:
      - expect: 220
      - send: EHLO test
        expect: 250
      - starttls: {{}}
      - expect_tls: {{max_version: TLSv1.2}}
""")
    with tls_server(ca_files) as server:
        code, out, err = run(plan, "--port", str(server.port), "--no-report", "--json", str(tmp_path / "r.json"))
    cases = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"]
    assert cases[0]["status"] == "passed", out + err
    assert cases[0]["tls"]["verified"] is True and cases[0]["tls"]["version"] == "TLSv1.2"
    assert cases[1]["status"] == "failed" and "version TLSv1.3 is above TLSv1.2" in cases[1]["reason"]
    assert code == 1


def auth_outputs(ca_files: Path, tmp_path: Path, *extra: str) -> tuple[int, str]:
    """Run submission-auth.yaml verbosely with every output on; return the status and all text produced."""
    with tls_server(ca_files, auth=ServerAuth("alice", PASSWORD)) as server:
        code, out, err = run(str(ROOT / "plans/submission-auth.yaml"), "--host", "localhost",
                             "--port", str(server.port), "--var", f"cafile={ca_files / 'ca.pem'}", "-v",
                             "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml"),
                             "--report-dir", str(tmp_path / "reports"), *extra)
    texts = [out, err] + [p.read_text() for p in tmp_path.rglob("*") if p.is_file()]
    return code, "\n".join(texts)


def test_auth_passes_and_no_output_holds_the_password(ca_files, tmp_path):
    code, everything = auth_outputs(ca_files, tmp_path, "--secret", f"password={PASSWORD}")
    assert code == 0, everything[:3000]
    assert "3 passed" in everything
    forms = [PASSWORD, base64.b64encode(PASSWORD.encode()).decode(),
             base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode(),
             base64.b64encode(f"\0alice\0not-{PASSWORD}".encode()).decode()]
    for form in forms:
        assert form not in everything, f"{form!r} leaked"
    assert "AUTH PLAIN ***" in everything and "***" in everything


def test_cram_md5_and_a_wrong_password(ca_files, tmp_path):
    plan = write_plan(tmp_path, f"""\
target: {{host: localhost, timeout: 5}}
vars: {{password: {PASSWORD}}}
secrets: [password]
cases:
  - name: right
    steps:
      - expect: 220
      - send: EHLO t
        expect: 250
      - starttls: {{cafile: "{ca_files / 'ca.pem'}"}}
      - send: EHLO t
        expect: {{code: 250, keywords: [AUTH]}}
      - auth: {{mechanism: CRAM-MD5, username: alice, password: "{{{{ password }}}}"}}
  - name: wrong is refused
    steps:
      - expect: 220
      - send: EHLO t
        expect: 250
      - starttls: {{cafile: "{ca_files / 'ca.pem'}"}}
      - send: EHLO t
        expect: 250
      - auth: {{mechanism: LOGIN, username: alice, password: nope-nope}}
        expect: 535
""")
    with tls_server(ca_files, auth=ServerAuth("alice", PASSWORD)) as server:
        code, out, err = run(plan, "--port", str(server.port), "-v", "--no-report")
    assert code == 0, out + err
    assert PASSWORD not in out and base64.b64encode(b"nope-nope").decode() not in out


def test_auth_offered_only_after_tls(ca_files, tmp_path):
    plan = write_plan(tmp_path, """\
target: {host: localhost, timeout: 5}
steps:
  - expect: 220
  - send: EHLO t
    expect: {code: 250, keywords: [STARTTLS], absent: [AUTH]}
""")
    with tls_server(ca_files, auth=ServerAuth("alice", PASSWORD, require_tls=False)) as server:
        code, out, _ = run(plan, "--port", str(server.port), "--no-report")
    assert code == 1
    assert "EHLO keywords offered but expected absent: AUTH" in out


def test_plaintext_after_starttls_220_fails_the_step(tmp_path):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, timeout: 3}
steps:
  - expect: 220
  - send: EHLO t
    expect: 250
  - starttls: {}
""")
    with FaultServer("starttls_injection") as server:
        code, out, _ = run(plan, "--port", str(server.port), "--no-report")
    assert code == 1
    assert "response injection" in out and "bytes of plaintext after its 220" in out


def test_xoauth2_token_accepted_refused_and_never_shown(ca_files, tmp_path):
    token = "ya29.a0-token-for-tests"
    plan = write_plan(tmp_path, f"""\
target: {{host: localhost, timeout: 5}}
cases:
  - name: right token
    steps:
      - expect: 220
      - send: EHLO t
        expect: 250
      - starttls: {{cafile: "{ca_files / 'ca.pem'}"}}
      - send: EHLO t
        expect: {{code: 250, keywords: [AUTH]}}
      - auth: {{mechanism: XOAUTH2, username: alice@example.com, password: "{{{{ token }}}}"}}
  - name: wrong token
    steps:
      - expect: 220
      - send: EHLO t
        expect: 250
      - starttls: {{cafile: "{ca_files / 'ca.pem'}"}}
      - send: EHLO t
        expect: 250
      - auth: {{mechanism: XOAUTH2, username: alice@example.com, password: "not-{{{{ token }}}}"}}
        expect: 535
""")
    with tls_server(ca_files, auth=ServerAuth("alice@example.com", token)) as server:
        code, out, err = run(plan, "--port", str(server.port), "--secret", f"token={token}", "-v",
                             "--json", str(tmp_path / "r.json"), "--no-report")
    everything = out + err + (tmp_path / "r.json").read_text()
    assert code == 0, everything
    blob = f"user=alice@example.com\x01auth=Bearer {token}\x01\x01"
    assert token not in everything and base64.b64encode(blob.encode()).decode() not in everything
    assert "AUTH XOAUTH2 ***" in everything
