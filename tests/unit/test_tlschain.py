"""The chain as sent, element by element, and its problems named: a missing intermediate, an order broken,
a name the leaf is not valid for."""

from __future__ import annotations

import ssl
from types import SimpleNamespace

import trustme

from runner.net.tlschain import chain_facts, name_matches, verify_outcome


def der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


def chain(tmp_path):
    root = trustme.CA(key_type=trustme.KeyType.RSA)
    middle = root.create_child_ca(key_type=trustme.KeyType.RSA)
    leaf = middle.issue_cert("mx.example.net", key_type=trustme.KeyType.RSA)
    root.cert_pem.write_to_path(str(tmp_path / "root.pem"))
    return [der(p.bytes()) for p in leaf.cert_chain_pems], tmp_path / "root.pem"


def test_each_element_with_key_signature_and_days_left(tmp_path):
    ders, _ = chain(tmp_path)
    leaf, middle = chain_facts(ders)
    assert leaf["issuer"] == middle["subject"] and leaf["names"] == ["mx.example.net"]
    assert (leaf["key"], leaf["key_bits"], leaf["signature"]) == ("RSA", 2048, "sha256WithRSAEncryption")
    assert leaf["days_left"] > 365 and leaf["not_after"].endswith("Z")


def test_a_complete_chain_has_no_problem_and_a_missing_intermediate_is_named(tmp_path):
    ders, root = chain(tmp_path)
    target = SimpleNamespace(cafile=str(root), name="mx.example.net")
    assert verify_outcome(None, ders, target)["problems"] == []
    alone = verify_outcome(ssl.SSLCertVerificationError(), ders[:1], target)
    middle = chain_facts(ders)[1]["subject"]
    assert alone["complete"] is False and alone["problems"] == [
        f"incomplete chain: the intermediate certificate {middle} (issuer of {chain_facts(ders)[0]['subject']}) "
        "is not sent and not in the trust store"]


def test_an_order_broken_and_a_wrong_name_are_named(tmp_path):
    ders, root = chain(tmp_path)
    out = verify_outcome(None, [ders[1], ders[0]], SimpleNamespace(cafile=str(root), name="mail.example.org"))
    assert out["problems"][0].startswith("chain out of order: certificate 1 (")
    assert out["name_ok"] is False
    assert "the certificate is not valid for mail.example.org (names: none)" in out["problems"]


def test_a_wildcard_stands_for_one_whole_label():
    assert name_matches("mx.example.net", "*.example.net")
    assert not name_matches("a.mx.example.net", "*.example.net")
    assert not name_matches("example.net", "*.example.net")
    assert name_matches("MX.Example.NET.", "mx.example.net")
