"""`tls_offer:` against real servers: the test Postfix and Exim, and a deliberately weak aiosmtpd server (TLS 1.0,
CBC and anonymous suites, a leaf sent without its intermediate). testssl.sh is the oracle for what Postfix offers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import trustme

from runner.tools.server import EmbeddedServer, ServerTls, server_tls_context
from tests.support.cli import run, write_plan
from tests.support.mtas import CA_PATH, EXIM, OPENSMTPD, POSTFIX, require_smtp
from tests.support.oldtls import old_tls_server
from tests.support.ratelimit import rate_limited
from tests.support.tlsservers import offer_step as offer
from tests.support.tlsservers import weak_server

pytestmark = pytest.mark.timeout(240)


def test_a_weak_server_has_each_weakness_named(tmp_path):
    weak = weak_server(tmp_path)
    try:
        code, facts, out = offer(tmp_path, weak.server.port, "{forbid: [NULL, EXPORT, RC4, 3DES, anonymous, CBC]}",
                                 str(weak.cafile))
    finally:
        weak.server.stop()
    assert code == 1, out
    failures = facts["failures"]
    assert "TLSv1 is offered; allowed: TLSv1.2, TLSv1.3" in failures
    assert "TLSv1.1 is offered; allowed: TLSv1.2, TLSv1.3" in failures
    assert "suite AES128-SHA (TLSv1, TLSv1.1, TLSv1.2) is CBC (forbidden)" in failures
    assert not any("suite ECDHE-RSA-AES128-GCM-SHA256 " in f for f in failures)  # AEAD, not anonymous: fine
    assert "suite AECDH-AES128-SHA (TLSv1, TLSv1.1, TLSv1.2) is anonymous and CBC (forbidden)" in failures
    assert (f"incomplete chain: the intermediate certificate {weak.intermediate} (issuer of "
            f"{facts['chain'][0]['subject']}) is not sent and not in the trust store") in failures
    assert "TLSv1.3 is not offered" in facts["warnings"]  # absent TLS 1.3 is a warning, not a failure
    assert not any(f.startswith("TLSv1.3") for f in failures)
    assert facts["verification"] == {**facts["verification"], "verified": False, "complete": False, "name_ok": True}
    assert "warning: TLSv1.3 is not offered" in out


def test_rc4_3des_and_export_suites_the_local_openssl_lacks_are_caught(tmp_path):
    """A server accepting only RC4-SHA, DES-CBC3-SHA and EXP-RC4-MD5 under TLS 1.0, which Debian's OpenSSL can
    neither offer nor complete: the hand-built hellos find them, in its order, and the default forbid names each."""
    with old_tls_server() as port:
        code, facts, out = offer(tmp_path, port, "{}", str(CA_PATH))
    assert code == 1, out
    assert facts["versions"] == {"TLSv1": ["RC4-SHA", "DES-CBC3-SHA", "EXP-RC4-MD5"]}
    assert facts["suites"]["EXP-RC4-MD5"]["id"] == "0x0003" and facts["server_order_by_version"] == {"TLSv1": True}
    failures = facts["failures"]
    assert "suite RC4-SHA (TLSv1) is RC4 (forbidden)" in failures
    assert "suite DES-CBC3-SHA (TLSv1) is 3DES (forbidden)" in failures
    assert "suite EXP-RC4-MD5 (TLSv1) is EXPORT and RC4 (forbidden)" in failures
    assert "* TLSv1: RC4-SHA, DES-CBC3-SHA, EXP-RC4-MD5" in out


def test_postfix_passes_what_the_plan_allows_and_fails_the_defaults_by_suite(tmp_path):
    require_smtp(POSTFIX)
    allowed = "{versions: [TLSv1, TLSv1.1, TLSv1.2, TLSv1.3], forbid: [EXPORT, RC4, 3DES], min_key_bits: 2048}"
    code, facts, out = offer(tmp_path, POSTFIX.port, allowed, str(CA_PATH))
    assert code == 0, out
    assert list(facts["versions"]) == ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    assert facts["chain"][0]["subject"] == "CN=mail.smtprun.test" and facts["chain"][0]["key_bits"] >= 2048
    assert facts["verification"]["verified"] is True and facts["verification"]["complete"] is True
    assert isinstance(facts["server_order"], bool) and facts["connections"] > 4
    code, facts, out = offer(tmp_path, POSTFIX.port, "{}", str(CA_PATH))
    assert code == 1, out
    assert "suite ADH-AES256-SHA (TLSv1, TLSv1.1, TLSv1.2) is anonymous (forbidden)" in facts["failures"]


def test_exim_against_mozilla_intermediate_and_a_wrong_name(tmp_path):
    require_smtp(EXIM)
    code, facts, out = offer(tmp_path, EXIM.port, "{profile: mozilla-intermediate, name: mx.other.example}",
                             str(CA_PATH))
    assert code == 1, out
    failures = facts["failures"]
    assert "TLSv1 is offered; allowed: TLSv1.2, TLSv1.3" in failures
    assert "suite AES128-SHA (TLSv1, TLSv1.1, TLSv1.2) is not in mozilla-intermediate's list" in failures
    assert any(f.startswith("the certificate is not valid for mx.other.example (names: ") for f in failures)
    assert not any("ECDHE-RSA-AES256-GCM-SHA384" in f for f in failures)  # in the profile's list: no finding


_TESTSSL_VERSION = {None: "TLSv1", "_1": "TLSv1.1", "_2": "TLSv1.2", "_3": "TLSv1.3"}


def _testssl(port: int, folder, *checks: str) -> list[dict]:
    """testssl.sh's JSON entries for `checks` (`-p -E`: protocols, and every suite of each)."""
    if shutil.which("testssl") is None:
        pytest.skip("testssl.sh is not installed (scripts/test-env.sh installs Debian's testssl.sh)")
    report = folder / "testssl.json"
    subprocess.run(["testssl", "--starttls", "smtp", *checks, "--jsonfile", str(report), "--warnings", "off",
                    "--color", "0", "--quiet", f"127.0.0.1:{port}"], capture_output=True, timeout=200, check=False)
    return json.loads(report.read_text())


def _testssl_offer(entries: list[dict]) -> dict[str, set[str]]:
    """`cipher-tls1_2_xc030` entries, whose finding's fourth word is the OpenSSL name."""
    found: dict[str, set[str]] = {}
    for entry in entries:
        m = re.fullmatch(r"cipher-tls1(_[123])?_x[0-9a-f]+", entry["id"])
        if m:
            found.setdefault(_TESTSSL_VERSION[m[1]], set()).add(entry["finding"].split()[3])
    return found


@pytest.mark.parametrize("server", [POSTFIX, EXIM], ids=lambda s: s.name)
def test_offer_equals_testssl(tmp_path, server):
    """Every suite of every version, TLS 1.3's five included: Postfix (OpenSSL) accepts three TLS 1.3 suites,
    Exim (GnuTLS) four, TLS_AES_128_CCM_SHA256 among them."""
    require_smtp(server)
    code, facts, out = offer(tmp_path, server.port, "{versions: [TLSv1, TLSv1.1, TLSv1.2, TLSv1.3], forbid: []}",
                             str(CA_PATH))
    assert code == 0, out
    oracle = _testssl_offer(_testssl(server.port, tmp_path, "-p", "-E"))
    assert set(facts["versions"]) == set(oracle)
    for version, suites in oracle.items():
        assert set(facts["versions"][version]) == suites, version
    assert len(facts["versions"]["TLSv1.3"]) == {"postfix": 3, "exim": 4}[server.name]
    assert facts["server_order_by_version"]["TLSv1.3"] is False  # testssl.sh -P: "NOT a cipher order configured"
    assert {facts["suites"][name]["id"] for name in facts["versions"]["TLSv1.3"]} <= {
        "0x1301", "0x1302", "0x1303", "0x1304", "0x1305"}
    assert f"* TLSv1.3: {', '.join(facts['versions']['TLSv1.3'])}" in out


def test_opensmtpd_tls13_suites_and_server_order(tmp_path):
    """OpenSMTPD enforces its own order under TLS 1.3 too. Its TLS 1.2 list is shorter than testssl.sh's: it picks
    RSA key-exchange suites in its ServerHello and then fails each handshake with a decrypt_error alert; testssl.sh
    stops at the ServerHello and counts them, smtprun's full handshakes do not."""
    require_smtp(OPENSMTPD)
    _, facts, _ = offer(tmp_path, OPENSMTPD.port, "{versions: [TLSv1.2, TLSv1.3], forbid: []}", str(CA_PATH))
    entries = _testssl(OPENSMTPD.port, tmp_path, "-p", "-E", "-P")
    oracle = _testssl_offer(entries)
    order = {entry["id"]: entry["finding"] for entry in entries}
    assert order["cipher_order"] == "server" and facts["server_order_by_version"]["TLSv1.3"] is True
    assert facts["versions"]["TLSv1.3"] == order["cipherorder_TLSv1_3"].split()  # its order, in its order
    assert set(facts["versions"]["TLSv1.2"]) < oracle["TLSv1.2"]


def test_a_rate_limited_server_is_scanned_whole_after_backing_off(tmp_path):
    """A server allowing 10 connections in half a second answers the rest 421: the scan backs off, says so, and finds
    the same offer as without the limit, never a version or suite "not offered" because of a 421."""
    weak = weak_server(tmp_path)
    try:
        _, direct, _ = offer(tmp_path, weak.server.port, "{}", str(weak.cafile))
        with rate_limited(("127.0.0.1", weak.server.port), allowed=10, window=0.5) as limiter:
            code, facts, out = offer(tmp_path, limiter.port, "{}", str(weak.cafile))
    finally:
        weak.server.stop()
    assert code == 1, out  # the weak server's weaknesses, as before
    assert limiter.refused > 0 and facts["rate_limited"] > 0
    assert facts["versions"] == direct["versions"]
    assert facts["failures"] == direct["failures"]
    assert re.search(r"scan: \d+ connections in [\d.]+s, rate-limited \d+ times \(backed off\)", out), out


def test_an_implicit_tls_server_passes_the_defaults_and_one_slot_per_host_is_refused_in_words(tmp_path):
    """RFC 8314 implicit TLS: the scan handshakes from the first byte. With --per-host 1 the case's own
    connection is the only one allowed, and the step says so instead of waiting out its timeout."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    with EmbeddedServer(tls=ServerTls(server_tls_context(str(tmp_path / "server.pem")), implicit=True)) as server:
        plan = write_plan(tmp_path, f"""
target: {{host: 127.0.0.1, port: {server.port}, tls: implicit, cafile: "{tmp_path / 'ca.pem'}", server_name: localhost}}
cases:
  - name: offer
    steps:
      - expect: 220
      - tls_offer: {{}}
""")
        code, out, err = run(plan, "--json", str(tmp_path / "r.json"), "--no-report")
        facts = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"][0]["steps"][1]["details"]
        one, out_one, err_one = run(plan, "--no-report", "--per-host", "1")
    assert code == 0, out + err
    assert set(facts["versions"]) == {"TLSv1.2", "TLSv1.3"} and facts["verification"]["verified"] is True
    assert one == 1 and "tls_offer needs a second connection to the server" in out_one + err_one
