"""The certificate chain a server sends, element by element, and what is wrong with it in plain words: a missing
intermediate is named as such (RFC 8446 §4.4.2: the server sends the chain up to, not necessarily including, a
trust anchor), not as OpenSSL's "unable to get local issuer certificate"."""

from __future__ import annotations

import itertools
import ssl
import warnings
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

__all__ = ["chain_facts", "name_matches", "verify_outcome"]


def _key(cert: x509.Certificate) -> tuple[str, int]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}", key.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return type(key).__name__, 0


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def _element(der: bytes) -> dict[str, Any]:
    cert = x509.load_der_x509_certificate(der)
    kind, bits = _key(cert)
    not_after = cert.not_valid_after_utc
    oid = cert.signature_algorithm_oid
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "key": kind, "key_bits": bits,
        "signature": getattr(oid, "_name", None) or oid.dotted_string,
        "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "days_left": (not_after - datetime.now(timezone.utc)).days,
        "names": _names(cert),
    }


def chain_facts(ders: list[bytes]) -> list[dict[str, Any]]:
    """Each certificate as sent, leaf first."""
    return [_element(der) for der in ders]


def name_matches(name: str, pattern: str) -> bool:
    """RFC 6125 §6.4.3: a wildcard stands for exactly one whole left-most label."""
    name, pattern = name.lower().rstrip("."), pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return name == pattern


def _anchors(cafile: str | None) -> set[str]:
    """The subjects of the trusted certificates (the CA file's, or the system store's)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=cafile) if cafile else ctx.load_default_certs()
    subjects = set()
    with warnings.catch_warnings():  # a system store holds old roots cryptography frowns on (negative serials)
        warnings.simplefilter("ignore")
        for der in ctx.get_ca_certs(binary_form=True):
            try:
                subjects.add(x509.load_der_x509_certificate(der).subject.rfc4514_string())
            except ValueError:
                continue
    return subjects


def _chain_problems(chain: list[dict[str, Any]], anchors: set[str]) -> list[str]:
    problems = []
    for n, (cert, above) in enumerate(itertools.pairwise(chain), start=1):
        if cert["issuer"] != above["subject"]:
            problems.append(f"chain out of order: certificate {n} ({cert['subject']}) is not issued by "
                            f"certificate {n + 1} ({above['subject']})")
    top = chain[-1] if chain else None
    if top and top["issuer"] != top["subject"] and top["issuer"] not in anchors:
        problems.append(f"incomplete chain: the intermediate certificate {top['issuer']} (issuer of "
                        f"{top['subject']}) is not sent and not in the trust store")
    return problems


def verify_outcome(error: BaseException | None, ders: list[bytes], target: Any) -> dict[str, Any]:
    """verified, complete, name_ok and problems (each naming the element), from a verifying handshake's error."""
    chain = chain_facts(ders)
    problems = _chain_problems(chain, _anchors(target.cafile)) if chain else ["no certificate sent"]
    leaf_names = chain[0]["names"] if chain else []
    name_ok = any(name_matches(target.name, pattern) for pattern in leaf_names)
    if not name_ok:
        problems.append(f"the certificate is not valid for {target.name} (names: {', '.join(leaf_names) or 'none'})")
    complete = not any(p.startswith("incomplete") for p in problems)
    if isinstance(error, ssl.SSLCertVerificationError) and complete and name_ok:
        problems.append(f"certificate verification failed: {error.verify_message}")
    return {"verified": error is None, "complete": complete, "name_ok": name_ok, "name": target.name,
            "problems": problems}
