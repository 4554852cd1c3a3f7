"""Judging a TLS offer: each profile's verdicts, finding by finding, on offers written out by hand."""

from __future__ import annotations

from typing import Any

from runner.net.tlsscan import Offer
from runner.plan.options import TlsOffer
from runner.run import tlspolicy
from runner.run.tlspolicy import Rules, judge, suite_classes


def rules(given: dict[str, Any]) -> Rules:
    """The rules of a `tls_offer:` step written as `given` (typed as the plan builder does it)."""
    return tlspolicy.rules(TlsOffer.read(given))

GCM = {"id": "0xC030", "kx": "kx-ecdhe", "auth": "auth-rsa", "cipher": "aes-256-gcm", "aead": True,
       "description": "ECDHE-RSA-AES256-GCM-SHA384 TLSv1.2 Kx=ECDH Au=RSA Enc=AESGCM(256) Mac=AEAD"}
CBC = {"id": "0x002F", "kx": "kx-rsa", "auth": "auth-rsa", "cipher": "aes-128-cbc", "aead": False,
       "description": "AES128-SHA SSLv3 Kx=RSA Au=RSA Enc=AES(128) Mac=SHA1"}
ADH = {"id": "0x0034", "kx": "kx-dhe", "auth": "auth-null", "cipher": "aes-128-cbc", "aead": False,
       "description": "ADH-AES128-SHA SSLv3 Kx=DH Au=None Enc=AES(128) Mac=SHA1"}
LEAF = {"subject": "CN=mx.example.net", "issuer": "CN=CA", "key": "RSA", "key_bits": 2048, "days_left": 90,
        "not_after": "2027-03-01T00:00:00Z", "names": ["mx.example.net"]}
GOOD_CHAIN = {"verified": True, "complete": True, "name_ok": True, "problems": []}


def offer(versions, suites, chain=(LEAF,), order=None) -> Offer:
    return Offer(versions=versions, suites=suites, chain=list(chain), verification=dict(GOOD_CHAIN),
                 server_order=order or {})


def test_a_sound_tls_12_only_server_passes_the_defaults_with_a_warning():
    failures, notes = judge(offer({"TLSv1.2": ["ECDHE-RSA-AES256-GCM-SHA384"]},
                                  {"ECDHE-RSA-AES256-GCM-SHA384": GCM}), rules({}))
    assert failures == []
    assert "TLSv1.3 is not offered" in notes


def test_each_failure_names_its_version_suite_or_certificate():
    weak = dict(LEAF, key_bits=1024)
    failures, _ = judge(offer({"TLSv1": ["ADH-AES128-SHA"], "TLSv1.2": ["ADH-AES128-SHA", "AES128-SHA"]},
                              {"ADH-AES128-SHA": ADH, "AES128-SHA": CBC}, chain=(weak,)), rules({}))
    assert failures == [
        "TLSv1 is offered; allowed: TLSv1.2, TLSv1.3",
        "suite ADH-AES128-SHA (TLSv1, TLSv1.2) is anonymous (forbidden)",
        "certificate 1 (CN=mx.example.net): RSA key of 1024 bits, under 2048",
    ]


def test_cbc_is_forbidden_only_when_the_plan_says_so_and_yaml_null_means_null():
    found = offer({"TLSv1.2": ["AES128-SHA"]}, {"AES128-SHA": CBC})
    assert judge(found, rules({}))[0] == []
    assert judge(found, rules({"forbid": [None, "CBC"]}))[0] == ["suite AES128-SHA (TLSv1.2) is CBC (forbidden)"]
    assert rules({"forbid": [None]}).forbid == {"NULL"}


def test_mozilla_intermediate_allows_its_nine_suites_only():
    found = offer({"TLSv1.2": ["ECDHE-RSA-AES256-GCM-SHA384", "AES128-SHA"]},
                  {"ECDHE-RSA-AES256-GCM-SHA384": GCM, "AES128-SHA": CBC})
    failures, notes = judge(found, rules({"profile": "mozilla-intermediate"}))
    assert failures == ["suite AES128-SHA (TLSv1.2) is not in mozilla-intermediate's list"]
    assert "TLSv1.3 is not offered" in notes  # a warning under intermediate too


def test_mozilla_modern_requires_tls_13_and_old_requires_the_servers_order():
    found = offer({"TLSv1.2": ["ECDHE-RSA-AES256-GCM-SHA384"]}, {"ECDHE-RSA-AES256-GCM-SHA384": GCM},
                  order={"TLSv1.2": False})
    modern, _ = judge(found, rules({"profile": "mozilla-modern"}))
    assert modern[:2] == ["TLSv1.2 is offered; allowed: TLSv1.3", "TLSv1.3 is not offered"]
    old, _ = judge(found, rules({"profile": "mozilla-old"}))
    assert old == ["TLSv1.2: the server does not enforce its own suite order (mozilla-old asks it)"]


def test_a_versions_list_is_the_exact_set_each_missing_one_a_failure():
    found = offer({"TLSv1.2": ["ECDHE-RSA-AES256-GCM-SHA384"]}, {"ECDHE-RSA-AES256-GCM-SHA384": GCM})
    failures, _ = judge(found, rules({"versions": ["TLSv1.2", "TLSv1.3"]}))
    assert failures == ["TLSv1.3 is not offered"]


def test_suite_classes_from_openssls_description():
    assert suite_classes("ADH-AES128-SHA", ADH) == ["anonymous", "CBC"]
    assert suite_classes("ECDHE-RSA-AES256-GCM-SHA384", GCM) == []
    assert "NULL" in suite_classes("NULL-SHA", {"cipher": None, "description": "NULL-SHA Enc=None Mac=SHA1"})
    assert "3DES" in suite_classes("DES-CBC3-SHA", {"cipher": "des-ede3-cbc", "description": ""})
    assert "RC4" in suite_classes("RC4-SHA", {"cipher": "rc4", "description": ""})


def kx_offer(**facts) -> Offer:
    found = offer({"TLSv1.2": ["ECDHE-RSA-AES256-GCM-SHA384"]}, {"ECDHE-RSA-AES256-GCM-SHA384": GCM})
    found.secure_renegotiation, found.compression, found.ocsp_stapling = True, "none", False
    for key, value in facts.items():
        setattr(found, key, value)
    return found


def test_weak_groups_and_dh_fail_by_name_and_a_profile_curve_list_is_advice():
    found = kx_offer(groups={"TLSv1.2": ["X25519", "secp160r1", "X448"], "TLSv1.3": ["X25519", "ffdhe2048"]},
                     dh={"bits": 1024, "group": "custom", "version": "TLSv1.2"})
    failures, _ = judge(found, rules({}))
    assert failures == ["DH group custom (1024 bits, TLSv1.2) is under 2048 bits",
                        "group secp160r1 (TLSv1.2) is a 160-bit curve group, under 224 bits"]
    failures, notes = judge(found, rules({"profile": "mozilla-intermediate"}))
    assert "group X448 (TLSv1.2) is not among mozilla-intermediate's curves (X25519, prime256v1, secp384r1)" in notes
    assert not any("X448" in f for f in failures)
    assert not any(f.startswith("DH group") for f in judge(found, rules({"profile": "mozilla-old"}))[0])


def test_renegotiation_compression_and_stapling_each_failure_or_warning_as_asked():
    found = kx_offer(secure_renegotiation=False, compression="DEFLATE")
    failures, notes = judge(found, rules({}))
    assert failures == ["secure renegotiation (RFC 5746) is not supported",
                        "TLS compression (DEFLATE) is accepted (CRIME)"]
    assert "OCSP stapling is not offered" in notes
    failures, notes = judge(found, rules({"secure_renegotiation": "warn", "compression": "warn",
                                          "ocsp_stapling": "required"}))
    assert failures == ["OCSP stapling is not offered"]
    assert "TLS compression (DEFLATE) is accepted (CRIME)" in notes


def test_what_was_not_tried_is_said_never_judged():
    found = kx_offer(secure_renegotiation=None, compression=None, ocsp_stapling=None,
                     not_tried={"OCSP stapling": "no TLS 1.2 or older handshake was accepted"})
    failures, notes = judge(found, rules({"ocsp_stapling": "required"}))
    assert failures == []
    assert "OCSP stapling: not tried (no TLS 1.2 or older handshake was accepted)" in notes


def test_ncsc_levels_versions_suites_order_and_groups():
    found = kx_offer(versions={"TLSv1.2": ["ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA"]},
                     suites={"ECDHE-RSA-AES256-GCM-SHA384": GCM, "ECDHE-RSA-AES128-SHA": CBC},
                     server_order={"TLSv1.2": False}, groups={"TLSv1.2": ["prime256v1", "secp224r1"]})
    good, _ = judge(found, rules({"profile": "ncsc-good"}))
    assert good[:2] == ["TLSv1.2 is offered; allowed: TLSv1.3", "TLSv1.3 is not offered"]
    assert "OCSP stapling is not offered" in good  # on is good (ncsc-good asks it)
    sufficient, _ = judge(found, rules({"profile": "ncsc-sufficient"}))
    assert ("TLSv1.2: the server does not enforce its own suite order (ncsc-sufficient asks it when suites "
            "below good are offered, as ECDHE-RSA-AES128-SHA)") in sufficient
    assert "group secp224r1 (TLSv1.2) is not in ncsc-sufficient's list" in sufficient
    phase_out, _ = judge(found, rules({"profile": "ncsc-phase-out"}))
    assert not any("secp224r1" in f for f in phase_out)


def test_ncsc_rates_tls13_aes_ccm_sufficient_and_ccm_8_insufficient():
    """As internet.nl rates them: AES-CCM with its 16-byte tag is sufficient, CCM_8 (an 8-byte tag) is not."""
    suites = {"TLS_AES_256_GCM_SHA384": GCM, "TLS_AES_128_CCM_SHA256": GCM, "TLS_AES_128_CCM_8_SHA256": GCM}
    found = kx_offer(versions={"TLSv1.3": list(suites)}, suites=suites, server_order={"TLSv1.3": True},
                     groups={"TLSv1.3": ["X25519"]})
    sufficient, _ = judge(found, rules({"profile": "ncsc-sufficient"}))
    assert not any("TLS_AES_128_CCM_SHA256 " in f for f in sufficient), sufficient
    assert any("TLS_AES_128_CCM_8_SHA256" in f for f in sufficient), sufficient
    good, _ = judge(found, rules({"profile": "ncsc-good"}))
    assert any("TLS_AES_128_CCM_SHA256 " in f for f in good), good
