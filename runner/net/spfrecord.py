"""An SPF record read without DNS (RFC 7208): its terms, every syntax error by name, and what a sender should not
publish (`ptr`, `+all`, `?all`). The evaluator (runner/net/spf.py) walks the terms; macros are expanded here.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

__all__ = ["SpfRecord", "Term", "expand", "parse"]

MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")  # RFC 7208 §5
_NEEDS_DOMAIN = ("include", "exists")  # RFC 7208 §5.2, §5.7: the domain-spec is required
_TAKES_DOMAIN = ("include", "exists", "a", "mx", "ptr")
_TERM = re.compile(r"^([+\-~?]?)([A-Za-z][A-Za-z0-9_.\-]*)(?:([:=])(.*?))?((?:/\d+)?(?://\d+)?)$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
_MACRO = re.compile(r"%\{([slodiphcrtvSLODIPHCRTV])(\d*)(r?)([.\-+,/_=]*)\}|%%|%_|%-|%(.?)", re.I)


@dataclass(frozen=True)
class Term:
    """One mechanism (qualifier, name, domain-spec or address, CIDR lengths) or modifier (name=value)."""

    text: str
    name: str  # lower case
    qualifier: str = "+"
    value: str = ""
    cidr4: int | None = None
    cidr6: int | None = None
    modifier: bool = False


@dataclass
class SpfRecord:
    text: str
    terms: list[Term] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # each makes check_host() a permerror (RFC 7208 §4.6)
    unsafe: list[str] = field(default_factory=list)  # legal, but lets anyone send as the domain (+all)
    warnings: list[str] = field(default_factory=list)  # legal, but what RFC 7208 advises against

    def modifier(self, name: str) -> Term | None:
        return next((t for t in self.terms if t.modifier and t.name == name), None)

    @property
    def mechanisms(self) -> list[Term]:
        return [t for t in self.terms if not t.modifier]


def parse(text: str) -> SpfRecord:
    """The record `v=spf1 ...` in terms; syntax errors and things not to publish named, term by term."""
    record = SpfRecord(text)
    words = text.split(" ")
    if words[0].lower() != "v=spf1":
        record.errors.append(f"the record does not start with v=spf1 (RFC 7208 §4.5): {text[:40]!r}")
        return record
    for word in words[1:]:
        if word:
            _add(record, word)
    _judge(record)
    return record


def _add(record: SpfRecord, word: str) -> None:
    match = _TERM.match(word)
    if not match:
        record.errors.append(f"syntax error in {word!r} (RFC 7208 §12)")
        return
    qualifier, name, sep, value, cidr = match.groups()
    name = name.lower()
    if sep == "=" and not qualifier and not cidr:
        record.terms.append(Term(word, name, value=value, modifier=True))
        if name in ("redirect", "exp") and not value:
            record.errors.append(f"{word!r}: {name}= needs a domain (RFC 7208 §6)")
        return
    problem = _mechanism_problem(name, sep, value or "", cidr)
    if problem:
        record.errors.append(f"{word!r}: {problem}")
        return
    cidr4, cidr6 = _cidrs(name, cidr)
    value = (value or "") + (cidr if name in ("ip4", "ip6") else "")  # an address keeps its prefix length
    record.terms.append(Term(word, name, qualifier or "+", value, cidr4, cidr6))


def _mechanism_problem(name: str, sep: str | None, value: str, cidr: str) -> str | None:
    if name not in MECHANISMS:
        return f"unknown mechanism {name!r} (RFC 7208 §5)"
    if sep == "=":
        return f"{name} is a mechanism, not a modifier: {name}:... (RFC 7208 §5)"
    if name in _NEEDS_DOMAIN and not value:
        return f"{name} needs a domain (RFC 7208 §5.2, §5.7)"
    if name == "all" and (sep or cidr):
        return "all takes no argument (RFC 7208 §5.1)"
    if name in ("ip4", "ip6"):
        return _address_problem(name, value + cidr)
    if value and name in _TAKES_DOMAIN:
        return _domain_spec_problem(value)
    if cidr and name not in ("a", "mx"):
        return f"{name} takes no CIDR length (RFC 7208 §5)"
    return _cidr_problem(cidr)


def _address_problem(name: str, value: str) -> str | None:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{value!r} is not an {'IPv4' if name == 'ip4' else 'IPv6'} network (RFC 7208 §5.6)"
    if network.version != (4 if name == "ip4" else 6):
        return f"{value!r} is not an {'IPv4' if name == 'ip4' else 'IPv6'} network (RFC 7208 §5.6)"
    return None


def _domain_spec_problem(value: str) -> str | None:
    for match in _MACRO.finditer(value):
        if match.group(5) is not None:
            return f"bad macro {match.group(0)!r} in {value!r} (RFC 7208 §7.1)"
    if "%" not in value and "." not in value.strip("."):
        return f"{value!r} is not a domain name with a dot (RFC 7208 §7.1, toplabel)"
    return None


def _cidr_problem(cidr: str) -> str | None:
    four, six = _cidrs("a", cidr)
    if (four is not None and four > 32) or (six is not None and six > 128):
        return f"CIDR length {cidr!r} out of range (RFC 7208 §5.6)"
    return None


def _cidrs(name: str, cidr: str) -> tuple[int | None, int | None]:
    if name in ("ip4", "ip6") or not cidr:
        return None, None
    four, _, six = cidr.partition("//")
    return (int(four[1:]) if four else None), (int(six) if six else None)


def _judge(record: SpfRecord) -> None:
    """Errors a record can have only as a whole, and what not to publish."""
    for name in ("redirect", "exp"):
        if sum(t.modifier and t.name == name for t in record.terms) > 1:
            record.errors.append(f"more than one {name}= modifier (RFC 7208 §6)")
    for term in record.terms:
        if term.name == "ptr" and not term.modifier:
            record.warnings.append(f"{term.text!r}: ptr should not be used: slow and unreliable (RFC 7208 §5.5)")
        if term.name == "all" and not term.modifier and term.qualifier == "+":
            record.unsafe.append(f"{term.text!r} passes every sender in the world (RFC 7208 §5.1, §8.3)")
        if term.name == "all" and not term.modifier and term.qualifier == "?":
            record.warnings.append(f"{term.text!r} says nothing of any sender: neutral (RFC 7208 §5.1, §8.2)")


def expand(spec: str, sender: str, domain: str, ip: str, helo: str = "") -> str:
    """A domain-spec with its macros expanded (RFC 7208 §7.3, §7.4); `sender` is local@domain."""
    local, _, sender_domain = sender.rpartition("@")
    address = ipaddress.ip_address(ip)
    values = {"s": sender, "l": local or "postmaster", "o": sender_domain or domain, "d": domain,
              "i": _dotted(address), "p": "unknown", "v": "in-addr" if address.version == 4 else "ip6",
              "h": helo or domain, "c": ip, "r": "unknown", "t": "0"}

    def one(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole in ("%%", "%_", "%-"):
            return {"%%": "%", "%_": " ", "%-": "%20"}[whole]
        letter, digits, reverse, delimiters = match.group(1, 2, 3, 4)
        parts = re.split("[" + re.escape(delimiters or ".") + "]", values[letter.lower()])
        if reverse:
            parts.reverse()
        if digits:
            parts = parts[-int(digits):] if int(digits) else parts
        return ".".join(parts)

    return _MACRO.sub(one, spec)


def _dotted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """%{i}: dotted quads, or an IPv6 address nibble by nibble (RFC 7208 §7.3)."""
    if address.version == 4:
        return str(address)
    return ".".join(address.exploded.replace(":", ""))
