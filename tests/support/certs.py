"""Certificates as DER, and their public keys read by an independent library, for DANE/TLSA tests."""

from __future__ import annotations

import hashlib
import ssl

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization


def der_chain(key_type: trustme.KeyType = trustme.KeyType.ECDSA, host: str = "mx1.example.test") -> list[bytes]:
    """DER of a fresh leaf for host and of its CA, end-entity first."""
    ca = trustme.CA(key_type=key_type)
    leaf = ca.issue_cert(host, key_type=key_type)
    return [ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode()),
            ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode())]


def spki_oracle(der: bytes) -> bytes:
    """The SPKI as cryptography (installed with trustme) extracts it: an independent check of the DER walker."""
    key = x509.load_der_x509_certificate(der).public_key()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def association(der: bytes, selector: int, mtype: int) -> str:
    """A TLSA record's certificate association data (RFC 6698 §2.1.2-2.1.4), as hex."""
    data = der if selector == 0 else spki_oracle(der)
    return (data if mtype == 0 else hashlib.new({1: "sha256", 2: "sha512"}[mtype], data).digest()).hex()


def chain_server(folder, not_after=None):
    """A server certificate for 127.0.0.1 and mx.example.test from an intermediate CA, written as one PEM (key,
    certificate, intermediate: the chain a well-run server sends) beside its root CA: (server PEM path, root CA
    path, DER of each certificate sent, its own first). `not_after` sets the server certificate's expiry."""
    root = trustme.CA()
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert("127.0.0.1", "mx.example.test", not_after=not_after)
    pem, ca = folder / "chain-server.pem", folder / "chain-ca.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(pem))
    root.cert_pem.write_to_path(str(ca))
    return pem, ca, [ssl.PEM_cert_to_DER_cert(p.bytes().decode()) for p in leaf.cert_chain_pems]
