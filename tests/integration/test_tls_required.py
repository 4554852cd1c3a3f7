"""plans/tls-audit.yaml's second case: a server that must insist on TLS refuses MAIL FROM before STARTTLS
(RFC 3207 §4), said as such when it does not; skipped unless the plan is told the server must."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.tools.server import EmbeddedServer, ServerTls
from tests.support.cli import ROOT, run

PLAN = str(ROOT / "plans/tls-audit.yaml")
CASE = "TLS required before mail"


def _required_case(tmp_path: Path, server: EmbeddedServer, cafile: Path, *more: str) -> tuple[dict, str]:
    out_json = tmp_path / "r.json"
    code, out, err = run(PLAN, "--host", "127.0.0.1", "--port", str(server.port), "--var", f"cafile={cafile}",
                         "--json", str(out_json), "--no-report", *more)
    assert code in (0, 1), err
    cases = {c["name"]: c for c in json.loads(out_json.read_text())["plans"][0]["cases"]}
    return cases[CASE], out + err


@pytest.fixture
def cafile(tmp_path: Path, test_ca) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "ca.pem"
    test_ca.ca.cert_pem.write_to_path(str(path))
    return path


def test_a_server_that_requires_tls_passes(tmp_path: Path, test_ca, cafile: Path) -> None:  # type: ignore[no-untyped-def]
    with EmbeddedServer(tls=ServerTls(test_ca.server_context(), required=True)) as server:
        case, _ = _required_case(tmp_path, server, cafile, "--var", "require_tls=true")
    assert case["status"] == "passed", case.get("reason")
    mail = case["steps"][2]
    assert mail["reply"]["code"] == 530


def test_a_server_that_takes_mail_without_tls_fails_with_the_reply_it_gave(tmp_path: Path, test_ca,  # type: ignore[no-untyped-def]
                                                                         cafile: Path) -> None:
    with EmbeddedServer(tls=ServerTls(test_ca.server_context())) as server:
        case, output = _required_case(tmp_path, server, cafile, "--var", "require_tls=true")
    assert case["status"] == "failed"
    assert "expected 530, got 250" in case["reason"]
    assert "MAIL FROM" in output


def test_without_the_variable_the_case_is_skipped(tmp_path: Path, test_ca, cafile: Path) -> None:  # type: ignore[no-untyped-def]
    with EmbeddedServer(tls=ServerTls(test_ca.server_context())) as server:
        case, _ = _required_case(tmp_path, server, cafile)
    assert case["status"] == "skipped"
    assert "require_tls" in case["reason"]
