"""TLS client contexts and the facts of an established TLS session (RFC 3207, RFC 8314)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import re
import ssl
import tempfile
from datetime import datetime, timezone
from typing import Any

from runner.files import read_regular

__all__ = ["CLOSED_IN_HANDSHAKE", "MAX_CA_BYTES", "chain_elements", "client_context", "describe_failure",
           "describe_session", "peer_chain", "rfc4514", "session_facts", "subject_of"]

_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


MAX_CA_BYTES = 16 * 1024 * 1024  # a whole system bundle is a few hundred KiB


def read_cafile(cafile: str) -> str | bytes:
    """A CA file's certificates, PEM text or DER bytes, read as runner.files reads every file: a FIFO,
    a device or a directory is an OSError at once, never a wait (OpenSSL would open and block on it)."""
    data = read_regular(cafile, MAX_CA_BYTES)
    if len(data) > MAX_CA_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_CA_BYTES >> 20} MiB: not a CA file", cafile)
    try:
        return data.decode("ascii")  # PEM
    except UnicodeDecodeError:
        return data  # DER


def client_context(verify: bool = True, cafile: str | None = None, min_version: str | None = None) -> ssl.SSLContext:
    """A client context; with verify, the chain and the host name are checked. OSError/SSLError pass up."""
    cadata = read_cafile(cafile) if cafile else None  # an empty string (an unset plan variable): the system store
    ctx = ssl.create_default_context(cadata=cadata) if verify else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if cadata:
            ctx.load_verify_locations(cadata=cadata)
    if min_version:
        if min_version in ("TLSv1", "TLSv1.1"):
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # old servers can only be tested if allowed
        ctx.minimum_version = _VERSIONS[min_version]
    return ctx


_ALERT = re.compile(r"(?:SSLV3|TLSV1)_ALERT_(\w+)")  # OpenSSL's names for the alerts of RFC 8446 §6
PLAINTEXT = "WRONG_VERSION_NUMBER"  # what OpenSSL says when the bytes that came back are not a TLS record
CLOSED_IN_HANDSHAKE = "the server closed the connection during the TLS handshake, without a TLS alert"


def describe_failure(exc: BaseException) -> str:
    """Why a handshake failed, in words; never empty (an alert, plaintext, a close, a timeout)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verification failed: {exc.verify_message or exc.reason}"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "TLS handshake timed out"
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError, EOFError)):
        return f"TLS handshake failed: {CLOSED_IN_HANDSHAKE}"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        alert = _ALERT.fullmatch(reason)
        if alert:
            name = alert[1].lower().replace("_", " ")
            return f"TLS handshake failed: the server sent the TLS alert {name!r} ({reason})"
        if reason == PLAINTEXT:
            return f"TLS handshake failed: the server answered in plaintext, not TLS ({reason})"
        return f"TLS handshake failed: {reason or exc.strerror or type(exc).__name__}"
    return f"TLS handshake failed: {str(exc) or CLOSED_IN_HANDSHAKE}"


def _sent_chain(tls: ssl.SSLObject) -> list[Any]:
    """The certificates the server sent, as OpenSSL objects, its own first; [] where Python hides them."""
    inner = getattr(tls, "_sslobj", None)
    for name in ("get_unverified_chain", "get_verified_chain"):  # public from Python 3.13, private before
        method = getattr(tls, name, None) or getattr(inner, name, None)
        if method is None:
            continue
        try:
            chain = method() or []
        except (ssl.SSLError, ValueError):
            continue
        if chain:
            return list(chain)
    return []


def _der(cert: Any) -> bytes:
    return cert if isinstance(cert, bytes) else cert.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]


def peer_chain(tls: ssl.SSLObject | None) -> list[bytes]:
    """The certificates the server presented, leaf first, as DER (the leaf alone where Python hides the rest)."""
    if tls is None:
        return []
    ders = [_der(cert) for cert in _sent_chain(tls)]
    if ders:
        return ders
    leaf = tls.getpeercert(binary_form=True)
    return [leaf] if leaf else []


_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
          "localityName": "L", "stateOrProvinceName": "ST", "streetAddress": "STREET", "domainComponent": "DC",
          "userId": "UID"}  # RFC 4514 §3's short names


def rfc4514(seq: Any) -> str:
    """A name as RFC 4514 writes it, its last part first: `CN=mx.example.com,O=Example` (as openssl's
    -nameopt RFC2253 and blackbox_exporter's labels write it), special characters escaped (§2.4)."""
    def escaped(value: str) -> str:
        value = "".join(f"\\{c}" if c in ',+"\\<>;=' else c for c in value)
        return "\\" + value if value[:1] in ("#", " ") else value
    return ",".join("+".join(f"{_SHORT.get(k, k)}={escaped(str(v))}" for k, v in rdn) for rdn in reversed(seq or ()))


def _element(cert: Any) -> dict[str, Any]:
    der = _der(cert)
    info = cert.get_info() if hasattr(cert, "get_info") else _decode_der(der)
    not_after = _utc(info.get("notAfter"))
    return {"subject": rfc4514(info.get("subject")), "issuer": rfc4514(info.get("issuer")),
            "serial": str(info.get("serialNumber", "")).lower(), "not_after": not_after and _iso(not_after),
            "days_left": not_after and (not_after - datetime.now(timezone.utc)).days,
            "sha256": hashlib.sha256(der).hexdigest()}


def chain_elements(tls: ssl.SSLObject | None) -> list[dict[str, Any]]:
    """Each certificate the server sent, its own first: RFC 4514 subject and issuer, serial number (hex),
    notAfter and days left, SHA-256 fingerprint (hex): what monitoring reports per element of the chain."""
    if tls is None:
        return []
    sent = _sent_chain(tls) or [der for der in (tls.getpeercert(binary_form=True),) if der]
    return [_element(cert) for cert in sent]


def _names(seq: Any) -> str:
    return ", ".join(f"{k}={v}" for rdn in seq or () for k, v in rdn)


def _decode_der(der: bytes) -> dict[str, Any]:
    """Decode a certificate the handshake did not verify (stdlib only decodes from a file)."""
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as fh:
            fh.write(ssl.DER_cert_to_PEM_cert(der))
            fh.flush()
            return ssl._ssl._test_decode_cert(fh.name)  # type: ignore[attr-defined]
    except Exception:
        return {}


def subject_of(der: bytes) -> str:
    """A DER certificate's subject as the TLS facts write names: `commonName=client.example.com`."""
    return _names(_decode_der(der).get("subject"))


def session_facts(tls: ssl.SSLObject | None, verified: bool) -> dict[str, Any]:
    """Protocol, cipher and certificate facts of a TLS session, as reports show them."""
    if tls is None:
        return {}
    cipher = tls.cipher()
    facts: dict[str, Any] = {
        "version": tls.version(),
        "cipher": cipher[0] if cipher else None,
        "verified": verified,
    }
    cert = tls.getpeercert() if verified else None
    if not cert:
        der = tls.getpeercert(binary_form=True)
        cert = _decode_der(der) if der else {}
    if cert:
        not_before, not_after = _utc(cert.get("notBefore")), _utc(cert.get("notAfter"))
        facts.update(
            subject=_names(cert.get("subject")),
            issuer=_names(cert.get("issuer")),
            san=[v for k, v in cert.get("subjectAltName", ()) if k in ("DNS", "IP Address")],
            not_before=not_before and _iso(not_before),
            not_after=not_after and _iso(not_after),
        )
        if not_after:
            facts["days_left"] = (not_after - datetime.now(timezone.utc)).days
        facts["chain"] = chain_elements(tls)
    return facts


def describe_session(facts: dict[str, Any]) -> str:
    """The TLS line of a transcript: `TLS established: TLSv1.3 TLS_AES_256_GCM_SHA384, certificate CN=mx,
    verified` (or `not verified (verify: false)`)."""
    cert = f", certificate {facts['subject']}" if facts.get("subject") else ""
    checked = "verified" if facts.get("verified") else "not verified (verify: false)"
    return f"TLS established: {facts.get('version')} {facts.get('cipher')}{cert}, {checked}"


def _utc(openssl_time: str | None) -> datetime | None:
    """OpenSSL's "Jun  1 12:00:00 2025 GMT" (RFC 5280 §4.1.2.5 times, always UTC) as a datetime."""
    if not openssl_time:
        return None
    try:
        return datetime.fromtimestamp(ssl.cert_time_to_seconds(openssl_time), timezone.utc)
    except ValueError:
        return None


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC, to the second, as reports and JSON give certificate dates: 2025-06-01T12:00:00Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
