"""`tls_offer:` key exchange, renegotiation, compression and OCSP stapling (runner/net/tlskx.py) against real
servers: the test Postfix and Exim, and the deliberately weak aiosmtpd server (a 1536-bit DH prime). testssl.sh
(`-S -f -R -C`) is the oracle for the ECDHE curves, the DH group, secure renegotiation, compression and stapling."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.support.mtas import CA_PATH, EXIM, POSTFIX, require_smtp
from tests.support.tlsservers import WEAK_DH, offer_step, weak_server

pytestmark = pytest.mark.timeout(240)

EVERYTHING = "{versions: [TLSv1, TLSv1.1, TLSv1.2, TLSv1.3], forbid: []}"
# testssl.sh names a well-known prime by its RFC; smtprun by OpenSSL's group name (docs/tls-audit.md).
_TESTSSL_DH = {"modp_1536": "RFC3526/Oakley Group 5", "modp_2048": "RFC3526/Oakley Group 14",
               "ffdhe2048": "RFC7919/ffdhe2048"}


def _testssl(port: int, folder) -> dict[str, str]:
    """testssl.sh's findings by id, for the facts compared here."""
    if shutil.which("testssl") is None:
        pytest.skip("testssl.sh is not installed (scripts/test-env.sh installs Debian's testssl.sh)")
    report = folder / "testssl-kx.json"
    subprocess.run(["testssl", "--starttls", "smtp", "-S", "-f", "-R", "-C", "--jsonfile", str(report),
                    "--warnings", "off", "--color", "0", "--quiet", f"127.0.0.1:{port}"], capture_output=True,
                   timeout=200, check=False)
    return {entry["id"]: entry["finding"] for entry in json.loads(report.read_text())}


def _agrees_with_testssl(facts: dict, oracle: dict[str, str]) -> None:
    curves = {g for groups in facts["groups"].values() for g in groups if not g.startswith("ffdhe")}
    assert curves == set(oracle["PFS_ECDHE_curves"].split())
    assert oracle["DH_groups"].startswith(_TESTSSL_DH[facts["dh"]["group"]])
    assert facts["secure_renegotiation"] is True and oracle["secure_renego"] == "supported"
    assert facts["compression"] == "none" and oracle["CRIME_TLS"].startswith("not vulnerable")
    assert facts["ocsp_stapling"] is False and oracle["OCSP_stapling"] == "not offered"
    # testssl.sh also renegotiates from the client (`secure_client_renego`); Python's ssl cannot, and a hand-built
    # hello stops before keys exist, so smtprun says it did not try rather than guess.
    assert "secure_client_renego" in oracle
    assert "renegotiation" in facts["not_tried"]["client-initiated renegotiation"]


def test_postfix_key_exchange_equals_testssl(tmp_path):
    require_smtp(POSTFIX)
    code, facts, out = offer_step(tmp_path, POSTFIX.port, EVERYTHING, str(CA_PATH))
    assert code == 0, out
    assert facts["dh"] == {"bits": 2048, "group": "modp_2048", "version": "TLSv1.2"}
    assert set(facts["groups"]) == {"TLSv1.2", "TLSv1.3"}
    _agrees_with_testssl(facts, _testssl(POSTFIX.port, tmp_path))
    assert "secure renegotiation: yes; compression: none; OCSP stapling: no" in out
    assert "warning: OCSP stapling is not offered" in out  # absent stapling is a warning by default


def test_a_weak_server_key_exchange_equals_testssl_and_its_dh_fails_intermediate(tmp_path):
    weak = weak_server(tmp_path)
    try:
        _, facts, out = offer_step(tmp_path, weak.server.port, EVERYTHING, str(weak.cafile))
        oracle = _testssl(weak.server.port, tmp_path)
        code, intermediate, _ = offer_step(tmp_path, weak.server.port, "{profile: mozilla-intermediate}",
                                           str(weak.cafile))
        _, old, _ = offer_step(tmp_path, weak.server.port, "{profile: mozilla-old}", str(weak.cafile))
    finally:
        weak.server.stop()
    assert facts["dh"] == {"bits": 1536, "group": WEAK_DH, "version": "TLSv1.2"}
    _agrees_with_testssl(facts, oracle)
    assert "DH: modp_1536 (1536 bits)" in out
    assert code == 1
    assert "DH group modp_1536 (1536 bits, TLSv1.2) is under 2048 bits" in intermediate["failures"]
    assert not any(f.startswith("DH group") for f in old["failures"])  # mozilla-old allows 1024 bits


def test_exim_under_the_ncsc_levels_names_each_group(tmp_path):
    """Exim (GnuTLS) accepts the RFC 7919 groups under TLS 1.3 and picks ffdhe2048 for DHE suites: NCSC-NL rates
    ffdhe2048 phase out, so ncsc-sufficient fails it by name and ncsc-phase-out lets it pass."""
    require_smtp(EXIM)
    _, sufficient, _ = offer_step(tmp_path, EXIM.port, "{profile: ncsc-sufficient}", str(CA_PATH))
    _, phase_out, _ = offer_step(tmp_path, EXIM.port, "{profile: ncsc-phase-out}", str(CA_PATH))
    assert "group ffdhe2048 (TLSv1.3) is not in ncsc-sufficient's list" in sufficient["failures"]
    assert ("DH group ffdhe2048 (2048 bits, TLSv1.2) is not in ncsc-sufficient's list "
            "(ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192)") in sufficient["failures"]
    assert not any("ffdhe3072" in f and f.startswith("group") for f in sufficient["failures"])
    assert not any("ffdhe2048" in f for f in phase_out["failures"])
    assert "TLSv1 is offered; allowed: TLSv1.2, TLSv1.3" in sufficient["failures"]
    assert not any(f.startswith("TLSv1 is offered") for f in phase_out["failures"])


def test_postfix_under_ncsc_sufficient_fails_its_self_chosen_dh_group_and_the_plan_can_allow_groups(tmp_path):
    require_smtp(POSTFIX)
    _, facts, _ = offer_step(tmp_path, POSTFIX.port, "{profile: ncsc-sufficient}", str(CA_PATH))
    assert ("DH group modp_2048 (2048 bits, TLSv1.2) is not in ncsc-sufficient's list "
            "(ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192)") in facts["failures"]
    assert not any(f.startswith("group ") for f in facts["failures"])  # its five curves are all rated good
    _, narrow, _ = offer_step(tmp_path, POSTFIX.port, "{groups: [x25519, secp256r1], forbid: []}", str(CA_PATH))
    assert "group X448 (TLSv1.2, TLSv1.3) is not in the plan's list" in narrow["failures"]
    assert not any("group X25519 " in f or "group prime256v1 " in f for f in narrow["failures"])
