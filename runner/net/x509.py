"""Just enough DER (X.690) to find a certificate's SubjectPublicKeyInfo, for DANE TLSA selector 1.

Python's ssl gives the peer's certificates as DER bytes and nothing more; pulling in a whole X.509
library for one field is not worth it. Anything unexpected is a ValueError naming the byte offset.
"""

from __future__ import annotations

__all__ = ["subject_public_key_info"]


def _der_item(der: bytes, pos: int, limit: int) -> tuple[int, int, int]:
    """(tag, content start, end) of the DER item at pos (X.690 §8.1, definite lengths only per §10.1)."""
    if pos + 2 > limit:
        raise ValueError(f"truncated at byte {pos}")
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        if not 0 < size <= 4 or pos + size > limit:
            raise ValueError(f"bad length at byte {pos - 1}")
        length, pos = int.from_bytes(der[pos : pos + size], "big"), pos + size
    if pos + length > limit:
        raise ValueError(f"truncated item at byte {pos}")
    return tag, pos, pos + length


def subject_public_key_info(cert_der: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of a DER X.509 certificate (RFC 5280 §4.1), for TLSA selector 1."""
    pos, tbs_end = 0, len(cert_der)
    for part in ("Certificate", "tbsCertificate"):
        tag, pos, tbs_end = _der_item(cert_der, pos, tbs_end)
        if tag != 0x30:
            raise ValueError(f"not a DER certificate ({part} is not a SEQUENCE)")
    # tbsCertificate: [0] version (optional), serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    tag, _, item_end = _der_item(cert_der, pos, tbs_end)
    if tag == 0xA0:
        pos = item_end
    for _ in range(5):
        pos = _der_item(cert_der, pos, tbs_end)[2]
    tag, _, item_end = _der_item(cert_der, pos, tbs_end)
    if tag != 0x30:
        raise ValueError("not a DER certificate (subjectPublicKeyInfo is not a SEQUENCE)")
    return cert_der[pos:item_end]
