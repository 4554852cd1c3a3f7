"""A TLS ClientHello built by hand, and the server's first flight read back: the key-exchange facts Python's ssl
does not expose (the curve in a TLS 1.2 ServerKeyExchange, the DH prime, the group a TLS 1.3 HelloRetryRequest
names) and the ServerHello's answers to renegotiation_info, compression and status_request. Sans-IO: bytes in,
facts out; no handshake is ever finished, so nothing here computes a key (runner/net/tlskx.py drives it).

Wire formats: RFC 5246 §6.2.1 (records), §7.4 (handshake messages), RFC 8446 §4.1.3-4.1.4 (ServerHello and
HelloRetryRequest), §4.2 (extensions), RFC 8422 §5.4 (ECDHE ServerKeyExchange).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import struct
from dataclasses import dataclass, field

__all__ = ["DH_GROUPS", "GROUPS", "TLS12_GROUPS", "TLS13_GROUPS", "Flight", "FlightReader", "Hello", "HelloError",
           "client_hello", "dh_group_name"]

# IANA "TLS Supported Groups", by OpenSSL's names (the ones testssl.sh and Postfix's tls_eecdh_auto_curves use).
GROUPS: dict[int, str] = {
    1: "sect163k1", 2: "sect163r1", 3: "sect163r2", 4: "sect193r1", 5: "sect193r2", 6: "sect233k1", 7: "sect233r1",
    8: "sect239k1", 9: "sect283k1", 10: "sect283r1", 11: "sect409k1", 12: "sect409r1", 13: "sect571k1",
    14: "sect571r1", 15: "secp160k1", 16: "secp160r1", 17: "secp160r2", 18: "secp192k1", 19: "prime192v1",
    20: "secp224k1", 21: "secp224r1", 22: "secp256k1", 23: "prime256v1", 24: "secp384r1", 25: "secp521r1",
    26: "brainpoolP256r1", 27: "brainpoolP384r1", 28: "brainpoolP512r1", 29: "X25519", 30: "X448",
    31: "brainpoolP256r1tls13", 32: "brainpoolP384r1tls13", 33: "brainpoolP512r1tls13",
    256: "ffdhe2048", 257: "ffdhe3072", 258: "ffdhe4096", 259: "ffdhe6144", 260: "ffdhe8192",
    0x11EB: "SecP256r1MLKEM768", 0x11EC: "X25519MLKEM768", 0x11ED: "SecP384r1MLKEM1024",
}
TLS12_GROUPS = tuple(range(1, 31))  # the ECDHE curves of RFC 8422 §5.1.1 and RFC 7027, X25519/X448 (RFC 8422)
TLS13_GROUPS = (23, 24, 25, 29, 30, 31, 32, 33, 256, 257, 258, 259, 260, 0x11EB, 0x11EC, 0x11ED)  # RFC 8446 §4.2.7

# Well-known finite-field primes, by the SHA-256 of p (big-endian): RFC 7919 (ffdhe*), RFC 3526 (modp_*),
# RFC 5114 (dh_*), named as OpenSSL's `genpkey -pkeyopt group:NAME` names them.
DH_GROUPS = {
    "9cd3b7f336872f46": "ffdhe2048", "0eaf67db3a839156": "ffdhe3072", "4648414224ac881b": "ffdhe4096",
    "227ac9066b3ddd9e": "ffdhe6144", "770b14efaf6f0499": "ffdhe8192", "64fcc83ec403930b": "modp_1536",
    "d66436f79bbd6b2e": "modp_2048", "48cf8b092fbce435": "modp_3072", "4ee95187682bcb23": "modp_4096",
    "d1bfe6d0925ce7e4": "modp_6144", "39ab4feab950a312": "modp_8192", "44c55cfee5c07592": "dh_1024_160",
    "bfe545862ca102ad": "dh_2048_224", "0b7835722cb61982": "dh_2048_256",
}

VERSION_CODES = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_VERSION_NAMES = {code: name for name, code in VERSION_CODES.items()}
TLS13_SUITES = (0x1301, 0x1302, 0x1303, 0x1304, 0x1305)  # RFC 8446 §B.4
# rsa_pss, ecdsa, ed25519/448, rsa_pkcs1 with SHA-2, then SHA-1 and SHA-224 (RFC 8446 §4.2.3, RFC 5246 §7.4.1.4.1)
_SIGALGS = (0x0804, 0x0805, 0x0806, 0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809, 0x080A, 0x080B, 0x0401,
            0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0203, 0x0201, 0x0202)
# RFC 8446 §4.1.3: a ServerHello with this random is a HelloRetryRequest.
_RETRY = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")
EXT_STATUS_REQUEST, EXT_RENEGOTIATION_INFO = 5, 0xFF01  # RFC 6066 §8, RFC 5746 §3.2
EXT_SUPPORTED_VERSIONS, EXT_KEY_SHARE = 43, 51
MAX_FLIGHT = 256 * 1024  # ServerHello to ServerHelloDone; RFC 8446 §4.4.2 bounds a chain only at 2^24 - 1 bytes
_ALERT, _HANDSHAKE = 21, 22
_SERVER_HELLO, _CERTIFICATE_STATUS, _SERVER_KEY_EXCHANGE, _SERVER_HELLO_DONE = 2, 22, 12, 14


class HelloError(Exception):
    """The server's answer is not a TLS flight smtprun can read."""


@dataclass(frozen=True)
class Hello:
    version: str  # the highest version offered (TLSv1.3: supported_versions holds only 0x0304)
    suites: tuple[int, ...]
    groups: tuple[int, ...]
    name: str = ""  # SNI (RFC 6066 §3); not sent for an IP address
    compression: bool = False  # offer DEFLATE (RFC 3749) before null
    status_request: bool = True  # ask for a stapled OCSP response (RFC 6066 §8)


def _vec(data: bytes, width: int) -> bytes:
    return len(data).to_bytes(width, "big") + data


def _u16s(values: tuple[int, ...]) -> bytes:
    return b"".join(struct.pack("!H", v) for v in values)


def _extensions(hello: Hello) -> bytes:
    exts = [(10, _vec(_u16s(hello.groups), 2)), (11, b"\x01\x00"), (13, _vec(_u16s(_SIGALGS), 2)),
            (EXT_RENEGOTIATION_INFO, b"\x00")]
    if hello.name and not _is_address(hello.name):
        host = hello.name.rstrip(".").encode("idna")
        exts.append((0, _vec(b"\x00" + _vec(host, 2), 2)))
    if hello.status_request:
        exts.append((EXT_STATUS_REQUEST, b"\x01\x00\x00\x00\x00"))  # ocsp, no responder ids, no extensions
    if hello.version == "TLSv1.3":
        exts += [(EXT_SUPPORTED_VERSIONS, b"\x02\x03\x04"), (EXT_KEY_SHARE, b"\x00\x00"),  # no share: ask for HRR
                 (45, b"\x01\x01")]  # psk_key_exchange_modes: psk_dhe_ke
    return b"".join(struct.pack("!HH", kind, len(body)) + body for kind, body in exts)


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def client_hello(hello: Hello) -> bytes:
    """One TLS record holding the ClientHello."""
    legacy = min(VERSION_CODES[hello.version], 0x0303)  # RFC 8446 §4.1.2: legacy_version 0x0303 for TLS 1.3
    compression = b"\x01\x00" if hello.compression else b"\x00"
    body = (struct.pack("!H", legacy) + os.urandom(32) + _vec(os.urandom(32), 1) + _vec(_u16s(hello.suites), 2)
            + _vec(compression, 1) + _vec(_extensions(hello), 2))
    message = b"\x01" + _vec(body, 3)
    return struct.pack("!BHH", _HANDSHAKE, 0x0301, len(message)) + message


@dataclass
class Flight:
    """What the server's first flight said."""

    version: str = ""  # negotiated (supported_versions for TLS 1.3)
    suite: int = 0
    compression: int = 0  # 0 null, 1 DEFLATE
    extensions: tuple[int, ...] = ()  # in the ServerHello
    retry: bool = False  # a HelloRetryRequest
    group: int | None = None  # the HRR's group, or the TLS 1.2 ServerKeyExchange's named curve
    dh_prime: bytes = b""  # a TLS 1.2 DHE ServerKeyExchange's p
    stapled: bool = False  # a CertificateStatus message came (RFC 6066 §8)
    alert: int | None = None  # the alert description, when the server refused


@dataclass
class FlightReader:
    """Fed the server's bytes in any split; `feed` returns the Flight once it is complete, else None."""

    dhe: bool = False  # the suites offered are DHE ones: a ServerKeyExchange carries p, not a curve
    _records: bytes = b""
    _messages: bytes = b""
    _seen: int = 0
    _flight: Flight = field(default_factory=Flight)

    def feed(self, data: bytes) -> Flight | None:
        self._seen += len(data)
        if self._seen > MAX_FLIGHT:
            raise HelloError(f"the server's first flight passed {MAX_FLIGHT} bytes")
        self._records += data
        while len(self._records) >= 5:
            kind, _, length = struct.unpack("!BHH", self._records[:5])
            if kind not in (_ALERT, _HANDSHAKE) or length > 2**14 + 2048:  # RFC 5246 §6.2.3
                raise HelloError("the server did not answer with a TLS handshake")
            if len(self._records) < 5 + length:
                return None
            body, self._records = self._records[5:5 + length], self._records[5 + length:]
            if kind == _ALERT:
                self._flight.alert = body[1] if len(body) > 1 else 0
                return self._flight
            self._messages += body
            if self._read_messages():
                return self._flight
        return None

    def _read_messages(self) -> bool:
        while len(self._messages) >= 4:
            kind, length = self._messages[0], int.from_bytes(self._messages[1:4], "big")
            if len(self._messages) < 4 + length:
                return False
            body, self._messages = self._messages[4:4 + length], self._messages[4 + length:]
            if self._message(kind, body):
                return True
        return False

    def _message(self, kind: int, body: bytes) -> bool:
        """True when the flight is complete."""
        try:
            if kind == _SERVER_HELLO:
                return _server_hello(self._flight, body)
            if kind == _CERTIFICATE_STATUS:
                self._flight.stapled = True
            elif kind == _SERVER_KEY_EXCHANGE:
                _key_exchange(self._flight, body, self.dhe)
        except (IndexError, struct.error, ValueError):
            raise HelloError(f"the server's handshake message {kind} is malformed") from None
        return kind == _SERVER_HELLO_DONE


def _server_hello(flight: Flight, body: bytes) -> bool:
    """Read a ServerHello; True when nothing more is needed (TLS 1.3 or a HelloRetryRequest)."""
    version = struct.unpack("!H", body[:2])[0]
    flight.retry = body[2:34] == _RETRY
    at = 35 + body[34]
    flight.suite, flight.compression = struct.unpack("!HB", body[at:at + 3])
    at += 3
    end = at + 2 + (struct.unpack("!H", body[at:at + 2])[0] if len(body) > at else 0)
    at += 2
    found = []
    while at + 4 <= end:
        kind, length = struct.unpack("!HH", body[at:at + 4])
        data = body[at + 4:at + 4 + length]
        found.append(kind)
        if kind == EXT_SUPPORTED_VERSIONS:
            version = struct.unpack("!H", data[:2])[0]
        elif kind == EXT_KEY_SHARE and flight.retry:
            flight.group = struct.unpack("!H", data[:2])[0]
        at += 4 + length
    flight.extensions = tuple(found)
    flight.version = _VERSION_NAMES.get(version, f"0x{version:04X}")
    return flight.version == "TLSv1.3" or flight.retry


def _key_exchange(flight: Flight, body: bytes, dhe: bool) -> None:
    if dhe:
        length = struct.unpack("!H", body[:2])[0]
        flight.dh_prime = body[2:2 + length].lstrip(b"\x00")
    elif body[0] == 3:  # named_curve (RFC 8422 §5.4)
        flight.group = struct.unpack("!H", body[1:3])[0]


def dh_group_name(prime: bytes) -> str:
    """The well-known group a DH prime is, or "custom"."""
    return DH_GROUPS.get(hashlib.sha256(prime).hexdigest()[:16], "custom")
