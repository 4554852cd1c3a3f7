"""Cipher suites found with hand-built ClientHellos (runner/net/tlshello.py) where Python's ssl cannot offer them:
the TLS 1.3 suites, which Python 3.11 cannot choose (its ssl has no SSL_CTX_set_ciphersuites, so it offers OpenSSL's
default three and learns the one the server picks), and the TLS <= 1.2 suites the local OpenSSL no longer has
(RC4, 3DES, EXPORT..., runner/net/tlslegacy.py).

By elimination, as Python's ssl does it for TLS <= 1.2 (runner/net/tlsscan.py): offer every suite, note the one
the server chose, offer the rest again, until it refuses (an alert, or it hangs up). A TLS 1.3 hello carries no
key share, so the server answers with a HelloRetryRequest, which names the chosen suite in plaintext (RFC 8446
§4.1.4); a TLS <= 1.2 one is read up to ServerHelloDone. Either way no key is ever agreed. The TLS 1.3 suites found
are offered once more in reverse, as are the older ones: a server still choosing the first one enforces its own
order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from runner.net.tlshello import TLS12_GROUPS, TLS13_GROUPS, TLS13_SUITES, Hello
from runner.net.tlskx import Exchange
from runner.net.tlslegacy import LEGACY

__all__ = ["HAND_BUILT_FACTS", "LEGACY", "TLS13_NAMES", "SuiteOrder", "eliminate", "enforces_order", "legacy", "tls13"]

# RFC 8446 §B.4; OpenSSL names the TLS 1.3 suites by their IANA names.
TLS13_NAMES = {0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384",
               0x1303: "TLS_CHACHA20_POLY1305_SHA256", 0x1304: "TLS_AES_128_CCM_SHA256",
               0x1305: "TLS_AES_128_CCM_8_SHA256"}
_TLS13_CIPHERS = {0x1301: ("aes-128-gcm", "AESGCM", 128), 0x1302: ("aes-256-gcm", "AESGCM", 256),
                  0x1303: ("chacha20-poly1305", "CHACHA20/POLY1305", 256), 0x1304: ("aes-128-ccm", "AESCCM", 128),
                  0x1305: ("aes-128-ccm", "AESCCM8", 128)}


def _tls13_facts(code: int) -> dict[str, Any]:
    """A TLS 1.3 suite as Python's SSLContext.get_ciphers describes one (it lists only the ones it offers)."""
    name, (cipher, enc, bits) = TLS13_NAMES[code], _TLS13_CIPHERS[code]
    return {"id": 0x03000000 | code, "name": name, "protocol": "TLSv1.3", "kea": "kx-any", "auth": "auth-any",
            "symmetric": cipher, "aead": True, "strength_bits": bits,
            "description": f"{name} TLSv1.3 Kx=any Au=any Enc={enc}({bits}) Mac=AEAD"}


# Facts of the suites only a hand-built hello offers, by OpenSSL name, in get_ciphers' shape.
HAND_BUILT_FACTS: dict[str, dict[str, Any]] = {
    **{facts["name"]: facts for facts in LEGACY.values()},
    **{TLS13_NAMES[code]: _tls13_facts(code) for code in TLS13_NAMES},
}


@dataclass(frozen=True)
class SuiteOrder:
    suites: tuple[int, ...] = ()  # IANA codes, in the order the server chose them
    server_order: bool | None = None  # None: fewer than two suites, there is no order to enforce


async def eliminate(exchange: Exchange, base: Hello) -> list[int]:
    """The suites of `base` the server accepts under `base.version`, in the order it chose them."""
    left, order = list(base.suites), []
    while left:
        flight = await exchange(replace(base, suites=tuple(left)), False)
        if flight is None or flight.alert is not None or flight.version != base.version or flight.suite not in left:
            break  # refused, or a lower version answered: the rest are not accepted under this one
        order.append(flight.suite)
        left.remove(flight.suite)
    return order


async def enforces_order(exchange: Exchange, base: Hello, order: list[int]) -> bool | None:
    """Whether the server still picks its first choice when the client prefers it last."""
    if len(order) < 2:
        return None
    flight = await exchange(replace(base, suites=tuple(reversed(order))), False)
    return flight is not None and flight.alert is None and flight.suite == order[0]


async def tls13(exchange: Exchange, name: str) -> SuiteOrder:
    """The five RFC 8446 suites, by elimination. HelloError when the server's answer cannot be read."""
    base = Hello("TLSv1.3", TLS13_SUITES, TLS13_GROUPS, name, status_request=False)
    order = await eliminate(exchange, base)
    return SuiteOrder(tuple(order), await enforces_order(exchange, base, order))


async def legacy(exchange: Exchange, version: str, name: str, local: set[str]) -> SuiteOrder:
    """The suites of runner/net/tlslegacy.py the local OpenSSL lacks (`local`: the names it has) that the server
    accepts under `version` (TLS 1.0 to 1.2), in the order it chose them, and whether that order is its own."""
    codes = tuple(code for code, facts in LEGACY.items() if facts["name"] not in local)
    if not codes:
        return SuiteOrder()
    base = Hello(version, codes, TLS12_GROUPS, name, status_request=False)
    order = await eliminate(exchange, base)
    return SuiteOrder(tuple(order), await enforces_order(exchange, base, order))
