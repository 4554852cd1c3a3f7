"""The named TLS policies a `tls_offer` step can be judged by, each fact cited beside it (runner/run/tlspolicy.py
applies them).

Mozilla: "Server Side TLS" guidelines, version 5.7 (https://wiki.mozilla.org/Security/Server_Side_TLS,
https://ssl-config.mozilla.org/guidelines/5.7.json): modern is TLS 1.3 only; intermediate is TLS 1.2 and 1.3 with
the nine AEAD suites below, RSA keys of 2048 bits or more and DH parameters of 2048 bits or more (`dh_param_size`);
old adds TLS 1.0/1.1, the CBC suites down to DES-CBC3-SHA and 1024-bit DH, and asks the server to enforce its
order. All three configure the curves X25519, prime256v1 and secp384r1 (`tls_curves`).

NCSC-NL: "IT Security Guidelines for Transport Layer Security (TLS)", version 2.1, 19 January 2021
(https://english.ncsc.nl/publications/publications/2021/january/19/it-security-guidelines-for-transport-layer-security-2.1),
the baseline of internet.nl's mail test. Each level allows what is rated at it or above:
- versions (B1-1): TLS 1.3 good; TLS 1.2 sufficient; TLS 1.1 and 1.0 phase out; SSL insufficient.
- suites (appendix C): good: ECDHE with ECDSA or RSA, AES-GCM or ChaCha20-Poly1305 (and the TLS 1.3 suites);
  sufficient: ECDHE with AES-CBC, DHE-RSA with AES-GCM, ChaCha20-Poly1305 or AES-CBC; phase out: 3DES with
  (EC)DHE, and RSA key exchange with AES or 3DES. Anything else is insufficient.
- ordering (B2-5): a server offering only good suites need not enforce its order; otherwise it must.
- groups (B6-1, table 10; internetstandards/dhe_groups): ECDHE secp384r1, secp256r1, X448, X25519 good (secp521r1
  too, as internet.nl reads it); finite-field ffdhe4096 and ffdhe3072 sufficient (ffdhe6144/8192 with them, as
  internet.nl reads it), ffdhe2048 and secp224r1 phase out; self-generated and other groups insufficient.
- compression insufficient; renegotiation without RFC 5746 insufficient (B8-1: client-initiated renegotiation
  became sufficient in 2.1, so it is not judged); OCSP stapling on is good, off sufficient.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROFILES", "Rules"]


@dataclass(frozen=True)
class Rules:
    versions: frozenset[str] = frozenset({"TLSv1.2", "TLSv1.3"})
    required: frozenset[str] = frozenset({"TLSv1.2"})  # versions whose absence fails; the others' absence is a note
    forbid: frozenset[str] = frozenset()
    suites: frozenset[str] | None = None  # the only suites allowed (a profile's list), None: any not forbidden
    min_key_bits: int = 2048  # RSA and DSA keys (NIST SP 800-57 Part 1 Rev. 5 §5.6.1: 112-bit security)
    server_order: bool = False  # the server must enforce its own order
    profile: str = ""
    groups: frozenset[str] | None = None  # the only key-exchange groups allowed, None: any of min_ecdh_bits
    advised_groups: frozenset[str] | None = None  # groups outside this list are a warning (Mozilla's tls_curves)
    min_ecdh_bits: int = 224  # NIST SP 800-57 Part 1 Rev. 5 §5.6.1: 224-bit curves for 112-bit security
    min_dh_bits: int = 2048  # finite-field DH (weakdh.org, "Logjam": 1024-bit groups are within reach)
    dh_groups: frozenset[str] | None = None  # the only DH primes allowed, by well-known name (NCSC: RFC 7919)
    good_suites: frozenset[str] | None = None  # NCSC B2-5: order enforced unless only these are offered
    secure_renegotiation: str = "required"  # "required" or "warn" when RFC 5746 is not supported
    compression: str = "forbidden"  # "forbidden" or "warn" when TLS compression is accepted (CRIME)
    ocsp_stapling: str = "warn"  # "required" or "warn" when no OCSP response is stapled


_INTERMEDIATE = ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                 "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
                 "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305")
_OLD = (*_INTERMEDIATE, "ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384", "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA", "DHE-RSA-AES128-SHA256", "DHE-RSA-AES256-SHA256", "AES128-GCM-SHA256",
        "AES256-GCM-SHA384", "AES128-SHA256", "AES256-SHA256", "AES128-SHA", "AES256-SHA", "DES-CBC3-SHA")
_TLS13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
_MOZILLA_CURVES = frozenset({"X25519", "prime256v1", "secp384r1"})

_NCSC_GOOD = (*_TLS13, "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305",
              "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305",
              "ECDHE-RSA-AES128-GCM-SHA256")
_NCSC_SUFFICIENT = (*_NCSC_GOOD, "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256",
                    "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA",
                    "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA", "DHE-RSA-AES256-GCM-SHA384",
                    "DHE-RSA-CHACHA20-POLY1305", "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-SHA256",
                    "DHE-RSA-AES256-SHA", "DHE-RSA-AES128-SHA256", "DHE-RSA-AES128-SHA",
                    # AES-CCM (16-byte tag), rated sufficient as internet.nl rates it (its tls_constants.py
                    # CIPHERS_SUFFICIENT); CCM_8 (an 8-byte tag) stays insufficient
                    "TLS_AES_128_CCM_SHA256", "ECDHE-ECDSA-AES256-CCM", "ECDHE-ECDSA-AES128-CCM")
_NCSC_PHASE_OUT = (*_NCSC_SUFFICIENT, "ECDHE-ECDSA-DES-CBC3-SHA", "ECDHE-RSA-DES-CBC3-SHA", "DHE-RSA-DES-CBC3-SHA",
                   "EDH-RSA-DES-CBC3-SHA", "AES256-GCM-SHA384", "AES128-GCM-SHA256", "AES256-SHA256", "AES256-SHA",
                   "AES128-SHA256", "AES128-SHA", "DES-CBC3-SHA")
_NCSC_GOOD_GROUPS = ("secp384r1", "prime256v1", "X448", "X25519", "secp521r1")
_NCSC_FFDHE = ("ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192")
_ALL_VERSIONS = frozenset({"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"})


def _ncsc(level: str, versions: frozenset[str], suites: tuple[str, ...], groups: tuple[str, ...]) -> Rules:
    dh = frozenset(g for g in groups if g.startswith("ffdhe"))
    required = frozenset({"TLSv1.3"}) if level == "good" else frozenset()  # B1-1: good is TLS 1.3
    return Rules(versions, required, suites=frozenset(suites), profile=f"ncsc-{level}", groups=frozenset(groups),
                 dh_groups=dh, min_dh_bits=2048, good_suites=frozenset(_NCSC_GOOD),
                 ocsp_stapling="required" if level == "good" else "warn")


PROFILES: dict[str, Rules] = {
    "mozilla-modern": Rules(frozenset({"TLSv1.3"}), frozenset({"TLSv1.3"}), suites=frozenset(_TLS13),
                            profile="mozilla-modern", advised_groups=_MOZILLA_CURVES),
    "mozilla-intermediate": Rules(suites=frozenset((*_INTERMEDIATE, *_TLS13)), profile="mozilla-intermediate",
                                  advised_groups=_MOZILLA_CURVES),
    "mozilla-old": Rules(_ALL_VERSIONS, suites=frozenset((*_OLD, *_TLS13)), server_order=True, profile="mozilla-old",
                         advised_groups=_MOZILLA_CURVES, min_dh_bits=1024),
    "ncsc-good": _ncsc("good", frozenset({"TLSv1.3"}), _NCSC_GOOD, _NCSC_GOOD_GROUPS),
    "ncsc-sufficient": _ncsc("sufficient", frozenset({"TLSv1.2", "TLSv1.3"}), _NCSC_SUFFICIENT,
                             (*_NCSC_GOOD_GROUPS, *_NCSC_FFDHE)),
    "ncsc-phase-out": _ncsc("phase-out", _ALL_VERSIONS, _NCSC_PHASE_OUT,
                            (*_NCSC_GOOD_GROUPS, *_NCSC_FFDHE, "ffdhe2048", "secp224r1")),
}
