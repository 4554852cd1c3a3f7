"""The client side of a TLS handshake as a plan pins it: a client certificate and its key, the SNI name sent,
a range of protocol versions and a cipher list (what swaks does with --tls-cert, --tls-key, --tls-sni,
--tls-protocol and --tls-cipher), for STARTTLS (RFC 3207) and implicit TLS (RFC 8314) alike.

The certificate's facts (its subject and SHA-256 fingerprint, as Postfix's relay_clientcerts lists it) are
read here so reports can say which certificate was offered; the key is only ever handed to OpenSSL.
"""

from __future__ import annotations

import errno
import ipaddress
import ssl
import warnings
from dataclasses import dataclass, replace
from typing import Any

from runner.files import read_regular
from runner.net import tls as tlsinfo

__all__ = ["OLD_VERSIONS", "VERSIONS", "ClientCert", "ClientTls", "Handshake", "cipher_problem",
           "name_matches", "read_client_cert", "sni_problem", "version_problem"]

VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
OLD_VERSIONS = frozenset({"TLSv1", "TLSv1.1"})  # OpenSSL 3 refuses them above security level 0
OLD_CIPHERS = "DEFAULT:@SECLEVEL=0"  # TLS 1.0/1.1 sign with SHA-1 and MD5, which level 1 and up forbid
MAX_PEM_BYTES = 1024 * 1024  # a certificate chain or a key is a few KiB


@dataclass(frozen=True)
class ClientCert:
    """The client certificate offered: its subject and SHA-256 fingerprint (colon-separated, upper case, as
    Postfix's `smtpd_tls_fingerprint_digest = sha256` writes it for relay_clientcerts)."""

    subject: str
    sha256: str

    def facts(self) -> dict[str, str]:
        return {"client_certificate": self.subject, "client_certificate_sha256": self.sha256}


@dataclass(frozen=True)
class ClientTls:
    """The client's TLS settings for one handshake, rendered (paths absolute, names final)."""

    verify: bool = True
    cafile: str = ""  # empty: the system's CA store
    min_version: str | None = None
    max_version: str | None = None
    ciphers: str | None = None  # an OpenSSL cipher list (TLS 1.2 and below)
    cert: str | None = None  # a PEM certificate (chain) file
    key: str | None = None  # its PEM private key, unencrypted

    def context(self) -> ssl.SSLContext:
        """The SSLContext; OSError when a file cannot be read, ValueError when a setting is refused."""
        ctx = tlsinfo.client_context(self.verify, self.cafile)
        low = self.min_version or ("TLSv1" if self.max_version in OLD_VERSIONS else None)
        if low in OLD_VERSIONS or self.max_version in OLD_VERSIONS:
            ctx.set_ciphers(OLD_CIPHERS)
        if self.ciphers:
            old = low in OLD_VERSIONS and "@SECLEVEL" not in self.ciphers.upper()
            _set_ciphers(ctx, self.ciphers + (":@SECLEVEL=0" if old else ""))
        with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated: testing them is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            if low:
                ctx.minimum_version = _VERSION_IDS[low]
            if self.max_version:
                ctx.maximum_version = _VERSION_IDS[self.max_version]
        if self.cert and self.key:  # read_client_cert has checked them: regular files, PEM, a matching pair
            ctx.load_cert_chain(self.cert, self.key, password=_no_password)
        return ctx


_VERSION_IDS = dict(zip(VERSIONS, (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_2,
                                   ssl.TLSVersion.TLSv1_3), strict=True))


def _no_password() -> bytes:
    raise ValueError("the key is encrypted: give it unencrypted (openssl pkey -in KEY -out PLAIN)")


def _set_ciphers(ctx: ssl.SSLContext, ciphers: str) -> None:
    try:
        ctx.set_ciphers(ciphers)
    except ssl.SSLError:
        raise ValueError(f"ciphers: OpenSSL selects no cipher from {ciphers!r}") from None


@dataclass(frozen=True)
class Handshake:
    """What one handshake is given: the context, the `sni` option (None or True: send the name checked; False:
    send none; a string: send it instead), the name the server's certificate must be valid for, and the client
    certificate offered. With an `sni` option the name is checked here after the handshake: OpenSSL checks
    only the name sent."""

    context: ssl.SSLContext
    sni_option: str | bool | None
    name: str
    verify: bool
    client_cert: ClientCert | None

    @classmethod
    def make(cls, tls: ClientTls, name: str, sni: str | bool | None) -> Handshake:
        cert = read_client_cert(tls.cert, tls.key) if tls.cert and tls.key else None
        context = tls.context()
        made = cls(context, sni, name, tls.verify, cert)
        if made.check_after:  # the chain is still verified in the handshake; the name after it
            context.check_hostname = False
        return made

    def named(self, name: str) -> Handshake:
        """The same handshake for another name checked (the next MX host)."""
        return replace(self, name=name)

    @property
    def pinned_sni(self) -> bool:
        return self.sni_option is not None and self.sni_option is not True

    @property
    def sni(self) -> str | None:
        """The name sent as SNI, None for none."""
        if not self.pinned_sni:
            return self.name
        return self.sni_option or None  # type: ignore[return-value]

    @property
    def check_after(self) -> bool:
        return self.verify and self.pinned_sni

    def facts(self) -> dict[str, Any]:
        """What the client sent, for the case's TLS facts: the SNI name when the plan chose it (None: none), the
        client certificate offered."""
        facts: dict[str, Any] = {"sni": self.sni} if self.pinned_sni else {}
        if self.client_cert is not None:
            facts.update(self.client_cert.facts())
        return facts

    def describe(self) -> list[str]:
        """Transcript notes about what the client sends beyond the defaults."""
        notes = [f"SNI sent: {self.sni}" if self.sni else "no SNI sent"] if self.pinned_sni else []
        if self.client_cert is not None:
            notes.append(f"client certificate offered (sent when the server asks for one): "
                         f"{self.client_cert.subject}, SHA-256 {self.client_cert.sha256}")
        return notes

    def name_problem(self, facts: dict[str, Any]) -> str | None:
        """After a handshake whose SNI the plan chose: why the certificate is not valid for the name, or None."""
        if not self.check_after:
            return None
        names = facts.get("san") or []
        if any(name_matches(self.name, san) for san in names):
            return None
        sent = f"SNI sent: {self.sni}" if self.sni else "no SNI sent"
        return (f"certificate verification failed: Hostname mismatch, certificate is not valid for {self.name!r} "
                f"(its names: {', '.join(names) or 'none'}; {sent})")


def name_matches(name: str, pattern: str) -> bool:
    """RFC 6125 §6.4.3: a wildcard stands for exactly one whole left-most label; IP addresses compare as such."""
    try:
        return ipaddress.ip_address(name) == ipaddress.ip_address(pattern)
    except ValueError:
        pass
    name, pattern = name.lower().rstrip("."), pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return name == pattern


def read_client_cert(cert: str, key: str) -> ClientCert:
    """The certificate's facts, once both files are read and found to be a PEM certificate and the unencrypted
    private key that goes with it; OSError (file) or ValueError (content) saying why not."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization

    cert_pem, key_pem = _read_pem(cert, "certificate"), _read_pem(key, "key")
    try:
        leaf = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise ValueError(f"cert {cert}: not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    try:
        private = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise ValueError(f"key {key}: the key is encrypted; give it unencrypted "
                         "(openssl pkey -in KEY -out PLAIN)") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        why = str(exc).split(". ", 1)[0].rstrip(".")  # cryptography's first sentence; the rest is guesses
        raise ValueError(f"key {key}: not a PEM private key ({why})") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if private.public_key().public_bytes(serialization.Encoding.DER, spki) != \
            leaf.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise ValueError(f"key {key} is not the private key of the certificate in {cert}")
    digest = leaf.fingerprint(hashes.SHA256())
    subject = tlsinfo.subject_of(leaf.public_bytes(serialization.Encoding.DER)) or leaf.subject.rfc4514_string()
    return ClientCert(subject or "(empty subject)", ":".join(f"{b:02X}" for b in digest))


def _read_pem(path: str, what: str) -> bytes:
    data = read_regular(path, MAX_PEM_BYTES)
    if len(data) > MAX_PEM_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_PEM_BYTES >> 10} KiB: not a {what} file", path)
    return data


def version_problem(min_version: str | None, max_version: str | None) -> str | None:
    """Why a version range is empty, or None."""
    if min_version and max_version and VERSIONS.index(max_version) < VERSIONS.index(min_version):
        return f"max_version {max_version} is below min_version {min_version}: no TLS version is left to offer"
    return None


def cipher_problem(ciphers: str) -> str | None:
    """Why OpenSSL takes no cipher from this list (a misspelt name, a list of only unknown ones), or None."""
    try:
        _set_ciphers(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), ciphers)
    except ValueError as exc:
        return str(exc)
    return None


def sni_problem(sni: str) -> str | None:
    """RFC 6066 §3: the SNI HostName is a DNS name; IP addresses are not sent in it."""
    try:
        ipaddress.ip_address(sni.strip("[]"))
    except ValueError:
        return None
    return f"sni: {sni} is an IP address; RFC 6066 §3 allows only host names in SNI (sni: false sends none)"
