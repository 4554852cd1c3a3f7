"""DANE for SMTP (RFC 7672, RFC 7671): TLSA records judged against the chain a server sends, without DNS.

Only DANE-TA (2) and DANE-EE (3) are usable for SMTP (RFC 7672 §3.1.3); selectors 0 (the whole certificate) and
1 (its SubjectPublicKeyInfo), matching types 0 (exact), 1 (SHA-256) and 2 (SHA-512) (RFC 6698 §2.1). A DANE-EE
record is matched against the server's own certificate, names and dates ignored (RFC 7672 §3.1.1); a DANE-TA
record against a certificate the server sends above its own (RFC 7671 §5.2.2: the server must send it), and then
the server's certificate must name the host (RFC 7672 §3.2.3).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from runner.net.tlschain import chain_facts, name_matches
from runner.net.x509 import subject_public_key_info

__all__ = ["DaneVerdict", "TlsaRecord", "judge"]

_USAGES = {2: "DANE-TA", 3: "DANE-EE"}  # RFC 7218 §2.1's names; 0 and 1 (PKIX) are unusable for SMTP
_SELECTORS = {0: "certificate", 1: "public key"}
_MATCHING = {0: None, 1: "sha256", 2: "sha512"}


@dataclass(frozen=True)
class TlsaRecord:
    usage: int
    selector: int
    mtype: int
    data: bytes

    def __str__(self) -> str:  # as a zone file writes it, the data cut short: "3 1 1 c7c273afc15436eb..."
        shown = self.data.hex()
        return f"{self.usage} {self.selector} {self.mtype} {shown[:16]}{'...' if len(shown) > 16 else ''}"

    @property
    def usable(self) -> str | None:
        """Why a sender ignores this record (RFC 7672 §3.1.3, RFC 6698 §2.1), or None."""
        if self.usage not in _USAGES:
            return f"usage {self.usage} (PKIX-{'TA' if self.usage == 0 else 'EE'}) is not used for SMTP " \
                   "(RFC 7672 §3.1.3)" if self.usage in (0, 1) else f"unknown usage {self.usage}"
        if self.selector not in _SELECTORS:
            return f"unknown selector {self.selector}"
        if self.mtype not in _MATCHING:
            return f"unknown matching type {self.mtype}"
        return None


@dataclass(frozen=True)
class DaneVerdict:
    """What the records say of the chain: records that match (with the certificate they match), those that match
    nothing, those a sender ignores, problems (no usable match, a DANE-TA name mismatch) and warnings (rollover)."""

    matched: tuple[str, ...]
    unmatched: tuple[str, ...]
    ignored: tuple[str, ...]
    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    rollover: bool


def _value(record: TlsaRecord, der: bytes) -> bytes:
    data = der if record.selector == 0 else subject_public_key_info(der)
    algorithm = _MATCHING[record.mtype]
    return hashlib.new(algorithm, data).digest() if algorithm else data


def _match(record: TlsaRecord, chain: list[bytes]) -> int | None:
    """The index of the certificate in the chain that record matches, or None. DANE-EE: the server's own
    (index 0); DANE-TA: one it sends above it (a self-signed server certificate is its own issuer)."""
    candidates = [0] if record.usage == 3 else (list(range(1, len(chain))) or [0])
    for index in candidates:
        try:
            if _value(record, chain[index]) == record.data:
                return index
        except ValueError:  # a certificate x509.py cannot read: it matches nothing
            continue
    return None


def _rollover(matched: list[TlsaRecord], unmatched: list[TlsaRecord], chain: list[bytes]) -> bool:
    """RFC 7671 §8.1: the next key's record published beside the current one ("current + next": a DANE-EE record
    matching no certificate sent, or a DANE-TA record matching none of the issuers the server sends), or a DANE-EE
    and a DANE-TA record both matching ("3 1 1 + 2 1 1"), so a new key or a new certificate from the same issuer is
    covered before it is deployed. A DANE-TA record the server gives nothing to match (it sends only its own
    certificate) is no next key: it cannot take over at all."""
    usages = {record.usage for record in matched}
    nexts = [record for record in unmatched if record.usage == 3 or (record.usage == 2 and len(chain) > 1)]
    return bool(matched) and ({2, 3} <= usages or bool(nexts))


def _name_problem(chain: list[bytes], names: list[str]) -> str | None:
    """DANE-TA: the server's certificate must name one of the reference identifiers (RFC 7672 §3.2.3)."""
    leaf_names = chain_facts(chain[:1])[0]["names"] if chain else []
    if any(name_matches(name, pattern) for name in names for pattern in leaf_names):
        return None
    return (f"the DANE-TA record matches, but the server's certificate does not name {' or '.join(names)} "
            f"(its names: {', '.join(leaf_names) or 'none'}; RFC 7672 §3.2.3)")


def judge(records: list[TlsaRecord], chain: list[bytes], names: list[str]) -> DaneVerdict:
    """The records (all of one TLSA RRset) against the chain as sent (server's certificate first); `names` are
    the reference identifiers: the MX host (the TLSA base domain) and the mail domain."""
    matched, unmatched, ignored, said_matched = [], [], [], []
    for record in records:
        why = record.usable
        if why:
            ignored.append(f"{record}: {why}")
            continue
        index = _match(record, chain)
        if index is None:
            unmatched.append(record)
            continue
        matched.append(record)
        which = "the server's certificate" if index == 0 else f"certificate {index + 1} of the chain"
        said_matched.append(f"{record} ({_USAGES[record.usage]}, {_SELECTORS[record.selector]}) matches {which}")
    problems, warnings = [], []
    ee = [r for r in matched if r.usage == 3]
    if matched and not ee:  # only DANE-TA matches: the name decides
        problem = _name_problem(chain, names)
        if problem:
            problems.append(problem)
    if records and not matched:
        problems.append("no usable TLSA record matches the chain the server sends: "
                        + "; ".join(_mismatch(record, chain) for record in unmatched) if unmatched else
                        "no usable TLSA record (usages 2 and 3 only, RFC 7672 §3.1.3)")
    rollover = _rollover(matched, unmatched, chain)
    if matched and not rollover:
        warnings.append(_rollover_advice(matched, unmatched, chain))
    return DaneVerdict(tuple(said_matched), tuple(map(str, unmatched)), tuple(ignored), tuple(problems),
                       tuple(warnings), rollover)


def _mismatch(record: TlsaRecord, chain: list[bytes]) -> str:
    if record.usage == 2 and len(chain) < 2:
        return (f"{record} (DANE-TA): the server sends only its own certificate, and a DANE-TA record needs the "
                "issuing certificate in the chain it sends (RFC 7671 §5.2.2)")
    if record.usage == 3:
        return f"{record} (DANE-EE) does not match the server's certificate"
    return f"{record} (DANE-TA) matches no certificate the server sends above its own ({len(chain) - 1} sent)"


def _rollover_advice(matched: list[TlsaRecord], unmatched: list[TlsaRecord], chain: list[bytes]) -> str:
    base = ("no rollover: only the current key is published, so a new key breaks DANE mail until the TLSA "
            "records change and their TTL passes; publish the next key's 3 1 1 beside the current one, or a "
            "2 1 1 of the issuing CA (RFC 7671 §8.1)")
    if any(record.usage == 2 for record in unmatched) and len(chain) < 2:
        return base + "; the 2 1 1 published cannot take over: the server does not send its CA certificate"
    return base
