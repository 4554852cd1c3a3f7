"""Postfix's XCLIENT and XFORWARD commands (XCLIENT_README, XFORWARD_README): a proxy or content filter
tells the server who the real client was. Pure functions: attributes in, a command line out."""

from __future__ import annotations

__all__ = ["ATTRIBUTES", "command_line", "restarts_session"]

# The attribute names each command takes, as Postfix 3.x documents them.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "XCLIENT": ("NAME", "REVERSE_NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN", "DESTADDR", "DESTPORT"),
    "XFORWARD": ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"),
}


def _xtext(value: str) -> str:
    """RFC 3461 §4: "+" and "=", and bytes outside "!" to "~", as "+" and two upper-case hex digits."""
    return "".join(chr(b) if 33 <= b <= 126 and b not in b"+=" else f"+{b:02X}" for b in value.encode("utf-8"))


def command_line(verb: str, attributes: dict[str, str]) -> str:
    """`XCLIENT NAME=x ADDR=y` in the order given, each value xtext; ValueError for an attribute the verb
    does not take (its reply would only say "501 Bad XCLIENT attribute name")."""
    known = ATTRIBUTES[verb]
    unknown = [name for name in attributes if name not in known]
    if unknown:
        raise ValueError(f"{verb} takes {', '.join(known)}, not {', '.join(unknown)}")
    return verb + "".join(f" {name}={_xtext(value)}" for name, value in attributes.items())


def restarts_session(command: str, code: int) -> bool:
    """XCLIENT accepted: the server answers with a new 220 greeting, and the client starts over with EHLO
    (XCLIENT_README: "the SMTP server ... resets its state" and sends a new greeting); what EHLO said is void."""
    return code == 220 and command.upper().startswith("XCLIENT")
