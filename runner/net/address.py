"""Host and port as people write them, read and written in one place.

    address  = "[" host "]" [":" port]   ; brackets for an IPv6 literal (RFC 3986 §3.2.2)
             | host ":" port             ; exactly one colon
             | host                      ; a name, an IPv4 address, or a bare IPv6 literal
    port     = 1*DIGIT                   ; ASCII digits, 1-65535
    host     = IP-address | name         ; a name: labels IDNA can encode, each 1-63 characters
    label    = let-dig [*(let-dig / "-" / "_") let-dig]   ; RFC 952 as RFC 1123 §2.1 relaxed it, "_" allowed

Errors are ValueErrors whose message a user can read; the command line and the resolver say
them in their own words around it.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from runner.text import CONTROLS, printable

__all__ = ["check_host", "check_port", "hostport", "ip_version", "parse_hostport", "parse_port", "parse_source",
           "split_hostport"]

MAX_LABEL = 63  # RFC 1035 §2.3.4: a label is 63 octets or less
MAX_NAME = 253  # RFC 1035 §2.3.4: 255 octets on the wire, so 253 characters written without the root's dot
_DOTS = re.compile("[.\u3002\uff0e\uff61]")  # what IDNA (RFC 3490 §3.1) takes for label separators
# RFC 1123 §2.1 (after RFC 952): letters, digits and hyphens, no hyphen first or last. "_" is allowed too: DNS
# holds any octet (RFC 2181 §11) and names with one exist (Active Directory zones); a resolver looks them up.
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?")
_NOT_IN_LABEL = re.compile(r"[^A-Za-z0-9_-]")
_LOOKALIKES = str.maketrans("lIioO,", "11100.")  # letters typed for digits, a comma for a dot


def _quoted(text: str) -> str:
    return "'" + printable(text, CONTROLS, backslash=True) + "'"


@functools.lru_cache(maxsize=1024)  # a load run connects to the same host thousands of times
def check_host(host: str) -> str:
    """`host`: an IP address, or a name the resolver can be asked for (one trailing dot allowed).

    The same rules for the command line, plans and the recorder; the name is encoded as
    getaddrinfo will encode it (Python's IDNA codec), so what passes here never fails there.
    """
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    bad = next((ch for ch in host if not ch.isprintable() or ch.isspace()), None)
    if bad is not None:
        raise ValueError(f"not a host name: {_quoted(host)} contains {_quoted(bad)}")
    if not name:
        raise ValueError(f"not a host name: {_quoted(host)}" if host else "an empty host name")
    _check_address_like(host, name)
    _check_labels(host, _DOTS.split(name))
    try:
        encoded = name.encode("idna")
    except UnicodeError as exc:
        raise ValueError(f"not a host name IDNA can encode: {_quoted(host)} ({_idna_reason(exc)})") from None
    if len(encoded) > MAX_NAME:
        raise ValueError(f"not a host name: {len(encoded)} characters encoded, over {MAX_NAME} (RFC 1035 §2.3.4)")
    return host


def _idna_reason(exc: UnicodeError) -> str:
    """What Python's IDNA codec found wrong with a name, without the codec machinery's wrapping: the codec's
    own error is the wrapper's __cause__ ("UnicodeError: label empty or too long"); from Python 3.13 the codec
    raises a UnicodeEncodeError whose `reason` says it."""
    if isinstance(exc, UnicodeEncodeError):
        return exc.reason
    cause = exc.__cause__
    return f"{type(cause).__name__}: {cause}" if isinstance(cause, UnicodeError) else str(exc)


def _check_labels(host: str, labels: list[str]) -> None:
    """Each label 1-63 characters (RFC 1035 §2.3.4), an ASCII one as RFC 1123 §2.1 has it, the last not all digits."""
    for n, label in enumerate(labels, start=1):
        if not label:
            raise ValueError(f"not a host name: {_quoted(host)} has an empty label")
        if len(label) > MAX_LABEL:
            raise ValueError(f"not a host name: label {n} of {_quoted(host[:80] + '...' if len(host) > 80 else host)} "
                             f"is {len(label)} characters, over {MAX_LABEL} (RFC 1035 §2.3.4)")
        if label.isascii() and not _LABEL.fullmatch(label):
            _refuse_label(host, label)
    if labels[-1].isdigit():
        raise ValueError(f"not a host name: {_quoted(host)} ends in an all-numeric label (RFC 1123 §2.1: a host "
                         "name's top-level label is alphabetic), and not an IPv4 address either")


def _check_address_like(host: str, name: str) -> None:
    """A name made of numbers is an IPv4 address mistyped, not a name to ask DNS for (RFC 1123 §2.1:
    a host name never has the form #.#.#.#): said as such, with the address meant when one is plain.
    Only a label with a digit in it, or of one character, is read as a number with a letter typed for a digit."""
    labels = name.split(".")
    if not any(label.isdigit() for label in labels):
        return
    meant = ".".join(label.translate(_LOOKALIKES) if len(label) == 1 or any(c.isdigit() for c in label) else label
                     for label in labels)
    try:
        address = ipaddress.IPv4Address(meant)
    except ValueError:
        if len(labels) == 4 and all(label.isdigit() for label in labels):
            raise ValueError(f"not an IPv4 address: {_quoted(host)} (each of the four numbers is 0-255)") from None
        return
    why = "looks like an IPv4 address with a typo" if meant != name else "is an IPv4 address with a dot after it"
    raise ValueError(f"not a host name: {_quoted(host)} {why}; did you mean {address}?")


def _refuse_label(host: str, label: str) -> None:
    """Why an ASCII label is not one of a host name (RFC 1123 §2.1, RFC 952)."""
    bad = _NOT_IN_LABEL.search(label)
    if bad is None:
        raise ValueError(f"not a host name: {_quoted(host)} has a label that starts or ends with a hyphen "
                         f"({_quoted(label)}; RFC 952, RFC 1123 §2.1)")
    fixed = host.replace(",", ".")
    hint = f"; did you mean {_quoted(fixed)}?" if bad[0] == "," and _is_name(fixed) else ""
    raise ValueError(f"not a host name: {_quoted(host)} contains {_quoted(bad[0])} (a host name is letters, "
                     f"digits and hyphens between dots: RFC 1123 §2.1){hint}")


def _is_name(text: str) -> bool:
    try:
        check_host(text)
    except ValueError:
        return False
    return True


def hostport(host: str, port: int | str) -> str:
    """host:port, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_port(port: object) -> int:
    """A port number given as a number: 1-65535, a bool is not one."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be 1-65535, not {port!r}")
    return port


def parse_port(text: str) -> int:
    """`port`: ASCII digits naming a TCP port, 1-65535."""
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise ValueError(f"not a TCP port: {text!r}")
    return int(text)


def split_hostport(text: str) -> tuple[str, str | None]:
    """`address` cut into host and port text (None when no port is written); nothing checked but
    the brackets, which must close and be followed by nothing or by `:port`."""
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"expected [IPv6] or [IPv6]:PORT, got {text!r}")
        return host, rest[1:] if rest else None
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, port
    return text, None


def parse_hostport(text: str) -> tuple[str, int | None]:
    """`address`, surrounding blanks ignored: (host, port or None). A host with several colons
    and no brackets must be an IPv6 address."""
    text = text.strip()
    if not text:
        raise ValueError("an empty host name")
    host, port = split_hostport(text)
    if not host:
        if text.startswith("["):
            raise ValueError(f"expected [IPv6] or [IPv6]:PORT, got {text!r}")
        raise ValueError(f"an empty host name in {text!r}")
    if port is None and ":" in host and not text.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"not a host, HOST:PORT or IPv6 address: {_quoted(text)}") from None
        _check_unambiguous(host)
    return check_host(host), None if port is None else parse_port(port)


def _check_unambiguous(address: str) -> None:
    """An IPv6 address without brackets whose last group could be a port ("2001:db8::1:25") is refused: the
    address alone, or the address before it and a port? RFC 3986 §3.2.2 brackets a literal to tell them apart."""
    head, _, last = address.rpartition(":")
    if not (last.isascii() and last.isdigit() and 0 < int(last) < 65536):
        return
    try:
        ipaddress.IPv6Address(head)
    except ValueError:
        return
    raise ValueError(f"{_quoted(address)} is ambiguous: the IPv6 address {address}, or {head} port {last}? "
                     f"write [{head}]:{last} for the port, or [{address}] for the address alone")


def parse_source(text: str) -> str:
    """`source`: the local IP address to connect from (IPv4, or IPv6 bare or in brackets), without a port.

    No port: a fixed source port could serve one session at a time, and TIME_WAIT (RFC 9293 §3.6.1)
    keeps it from the next; the system picks one, as Postfix's smtp_bind_address does.
    """
    given = text.strip()
    bare = given[1:-1] if given.startswith("[") and given.endswith("]") else given
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        _check_unicast(address, text)
        return str(address)
    try:
        host, port = split_hostport(given)
    except ValueError:
        host, port = given, None
    if port is not None:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            raise ValueError(f"a source address takes no port: {_quoted(text)} (the system picks the port)")
    raise ValueError(f"not an IPv4 or IPv6 address: {_quoted(text)}" if text else "an empty source address")


def _check_unicast(address: ipaddress.IPv4Address | ipaddress.IPv6Address, text: str) -> None:
    """A socket may be bound to 0.0.0.0, ::, a multicast or the broadcast address, but a TCP connection then
    leaves from an address the system picks (RFC 1122 §3.2.1.3, RFC 4291 §2.7: no such source): refused,
    so a source given is the one used."""
    kind = ("the unspecified address" if address.is_unspecified else "a multicast address" if address.is_multicast
            else "the broadcast address" if address == ipaddress.IPv4Address("255.255.255.255") else None)
    if kind is not None:
        raise ValueError(f"{_quoted(text)} is {kind}, not one a connection can come from "
                         "(give an address of this machine, or no source for the system's choice)")


@functools.lru_cache(maxsize=1024)
def ip_version(address: str) -> int | None:
    """4 or 6 for an IP address (an IPv6 one may carry a %zone), None for a name."""
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None
