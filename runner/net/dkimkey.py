"""DKIM keys in DNS (RFC 6376 §3.6.1): `<selector>._domainkey.<domain>` found and parsed with dkimpy's tag-list and
key parsers, then judged: key type, RSA size (RFC 8301 §3.2: under 1024 bits is refused by verifiers, under 2048 is
weak), the `t=y` testing flag, a revoked key (an empty `p=`)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from runner.net.resolver import DnsError, Lookups, ResolverConfig, shown

__all__ = ["MIN_RSA_BITS", "WEAK_RSA_BITS", "DkimKey", "check_key", "parse_key"]

MIN_RSA_BITS = 1024  # RFC 8301 §3.2: verifiers must not accept signatures with smaller RSA keys
WEAK_RSA_BITS = 2048  # RFC 8301 §3.2: signers should use at least 2048 bits
ED25519_KEY_BYTES = 32  # RFC 8463 §4.2: p= is the raw 32-byte Ed25519 public key
_SELECTOR = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}))*$")


@dataclass
class DkimKey:
    """One selector's key record and what was found in it: the JSON facts per selector."""

    selector: str
    name: str
    record: str | None = None
    key_type: str | None = None
    bits: int | None = None
    testing: bool = False
    revoked: bool = False
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def facts(self) -> dict[str, Any]:
        return {"selector": self.selector, "name": self.name, "record": self.record, "key_type": self.key_type,
                "bits": self.bits, "testing": self.testing, "revoked": self.revoked, "errors": self.errors,
                "warnings": self.warnings}


def parse_key(key: DkimKey, record: str) -> None:
    """The key record's tags (dkimpy's RFC 6376 §3.2 tag-list parser) judged into key's fields."""
    from dkim.util import InvalidTagValueList, parse_tag_value

    key.record = record
    try:
        tags = {k.decode().lower(): v.decode("ascii", "replace") for k, v in parse_tag_value(record.encode()).items()}
    except InvalidTagValueList as e:
        key.errors.append(f"the record is not a tag=value list: {type(e).__name__} {e} (RFC 6376 §3.2)")
        return
    if "v" in tags and (tags["v"] != "DKIM1" or not record.lstrip().startswith("v")):
        key.errors.append(f"v={tags['v']}: the version must be DKIM1 and come first (RFC 6376 §3.6.1)")
    flags = [flag.strip() for flag in tags.get("t", "").split(":") if flag.strip()]
    key.testing = "y" in flags
    if key.testing:
        key.warnings.append("t=y: the domain is testing DKIM, verifiers may treat its signatures as unsigned "
                            "(RFC 6376 §3.6.1)")
    key.key_type = tags.get("k", "rsa").lower()
    if "p" not in tags:
        key.errors.append("no p= tag: the public key is required (RFC 6376 §3.6.1)")
        return
    data = re.sub(r"\s+", "", tags["p"])
    if not data:
        key.revoked = True
        key.errors.append("the key is revoked: p= is empty (RFC 6376 §3.6.1), so every signature with this "
                          "selector fails")
        return
    _judge_key(key, data)


def _judge_key(key: DkimKey, data: str) -> None:
    try:
        der = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        key.errors.append("p= is not base64 (RFC 6376 §3.6.1)")
        return
    if key.key_type == "ed25519":
        key.bits = 256
        if len(der) != ED25519_KEY_BYTES:
            key.errors.append(f"p= holds {len(der)} bytes, not an Ed25519 key's 32 (RFC 8463 §4.2)")
        return
    if key.key_type != "rsa":
        key.errors.append(f"k={key.key_type} is not a key type verifiers know: rsa or ed25519 (RFC 6376 §3.6.1, "
                          "RFC 8463)")
        return
    from dkim.crypto import UnparsableKeyError, parse_public_key

    try:
        key.bits = int(parse_public_key(der)["modulus"]).bit_length()
    except (UnparsableKeyError, KeyError, IndexError, TypeError, ValueError) as e:
        key.errors.append(f"p= is not an RSA public key: {e} (RFC 6376 §3.6.1)")
        return
    if key.bits < MIN_RSA_BITS:
        key.errors.append(f"the RSA key has {key.bits} bits, under {MIN_RSA_BITS}: verifiers refuse its signatures "
                          "(RFC 8301 §3.2)")
    elif key.bits < WEAK_RSA_BITS:
        key.warnings.append(f"the RSA key has {key.bits} bits, under the {WEAK_RSA_BITS} signers should use "
                            "(RFC 8301 §3.2)")


async def check_key(domain: str, selector: str, config: ResolverConfig, lookups: Lookups) -> DkimKey:
    """The selector's one key record, found and judged."""
    key = DkimKey(selector, f"{selector}._domainkey.{shown(domain).lower()}")
    if not _SELECTOR.match(selector):
        key.errors.append(f"{selector!r} is not a selector: dot-separated labels (RFC 6376 §3.1)")
        return key
    try:
        texts = await lookups.query(key.name, "TXT", config)
    except DnsError as e:
        key.errors.append(f"no DKIM key at {key.name}" if e.nxdomain else f"DKIM key not checked: {e}")
        return key
    records = [t.decode("utf-8", "replace") for t in texts]
    if not records:
        key.errors.append(f"no DKIM key at {key.name}: the name has no TXT record")
    elif len(records) > 1:
        key.errors.append(f"{len(records)} TXT records at {key.name}: a selector's key must be one (RFC 6376 "
                          "§3.6.2.2)")
    else:
        parse_key(key, records[0])
    return key
