"""The client's side of one SMTP session, without I/O: bytes in, typed events out.

Rule (as h11's `_state.py` has it): everything that changes session state lives in this file.
The interpreter and the recorder hand it the bytes they receive (`receive`) and tell it what they
sent (`sent`); it says what those bytes are: the next complete `Reply` or `NEED_DATA`; what the
end of the connection or of a wait means (`Closed`, `TimedOut`); bytes no command asked for
(`Unsolicited`); plaintext where RFC 3207 allows none (`Injection`). A broken reply raises
`ProtocolError`, and the session stays broken after it. Decisions are made on these types,
never on the words of a message; the words are the caller's.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from runner.errors import ProtocolError
from runner.smtp.protocol import Reply, ReplyParser
from runner.smtp.xclient import restarts_session

__all__ = [
    "NEED_DATA",
    "Closed",
    "Injection",
    "NeedData",
    "ProtocolError",
    "SmtpSession",
    "TimedOut",
    "Unsolicited",
]


class NeedData:
    """No complete reply yet: receive more bytes."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()


@dataclass(frozen=True)
class Closed:
    """The server closed the connection; `partial` holds the bytes of a reply it left unfinished."""

    partial: bytes = b""

    @property
    def mid_reply(self) -> int:
        """How many bytes of an unfinished reply came before the close (0: it closed between replies)."""
        return len(self.partial)


@dataclass(frozen=True)
class TimedOut:
    """A wait reached its deadline; `partial` holds the bytes of a reply that was still arriving."""

    partial: bytes = b""


@dataclass(frozen=True)
class Unsolicited:
    """Bytes the server sent when it owed no reply (RFC 5321 §4.2: one reply per command)."""

    data: bytes


@dataclass(frozen=True)
class Injection:
    """Plaintext received where RFC 3207 §4.2 allows none (response injection, cf. CVE-2011-0411).

    `handshake` is False for bytes that came after the 220 to STARTTLS, True for bytes that came
    around the TLS handshake, before the client spoke under TLS.
    """

    data: bytes
    handshake: bool = False


Event = Reply | NeedData


class SmtpSession:
    """What the client knows about the session: replies owed, keywords in force, greeting names."""

    def __init__(self, keywords: dict[str, str] | None = None, strict: bool = False) -> None:
        self.strict = strict  # reply text that is not UTF-8 is a ProtocolError, not Latin-1
        self._parser = ReplyParser(strict=strict)
        # Replies the server owes: the banner first (RFC 5321 §3.1); None once bytes were sent
        # whose replies cannot be counted (raw:).
        self.owed: int | None = 1
        self._owners: deque[object] = deque([None])  # what each reply owed answers, as `sent` was told
        self.keywords: dict[str, str] = dict(keywords or {})  # EHLO/LHLO keywords in force
        self.greeting_hosts: list[str] = []  # host names the banner and EHLO replies gave
        self.tls = False
        self._starttls_asked = False  # STARTTLS sent, its reply not yet taken
        self._held = False  # its 220 came: nothing after it is a reply until starttls_accepted()
        self.ended_by: int | None = None  # 221 or 421: the server has closed the session (RFC 5321 §3.8, §4.1.1.10)
        self._in_data = False  # a 354 came: the server reads message text until CRLF.CRLF (§4.1.1.4)
        self.replies = 0  # complete replies taken so far (0: not even the banner)
        self.lmtp = False  # a 250 to LHLO came: the end of data owes one reply per accepted recipient
        self.accepted_recipients = 0  # RCPTs of this transaction that a 2xx answered (as judged)
        self.smtputf8 = False  # this transaction's MAIL carried SMTPUTF8 and a 2xx answered it (RFC 6531 §3.4)

    # -- bytes in ----------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        """Bytes from the server, in whatever pieces the network delivered them."""
        if data:
            self._parser.feed(data)

    def next_event(self) -> Event:
        """The next complete reply, or NEED_DATA. ProtocolError when the bytes are not SMTP replies."""
        if self._held:
            return NEED_DATA
        reply = self._parser.next_reply()
        if reply is None:
            return NEED_DATA
        self.replies += 1
        if self.owed is not None and self.owed > 0:
            self.owed -= 1
            self._owners.popleft()
        if reply.code in (221, 421):  # the server closes the channel after either; nothing more will be read
            self.ended_by = reply.code
        self._in_data = reply.code == 354
        if self._starttls_asked:
            self._starttls_asked = False
            self._held = reply.code == 220
        return reply

    @property
    def pending(self) -> bytes:
        """Bytes received and not yet part of a complete reply."""
        return self._parser.pending

    def closed(self) -> Closed:
        """The server closed the connection: between replies, or in the middle of one."""
        return Closed(self._parser.pending)

    def timed_out(self) -> TimedOut:
        """A wait for a reply reached its deadline."""
        return TimedOut(self._parser.pending)

    # -- bytes out ---------------------------------------------------------------------------
    def unsolicited(self) -> Unsolicited | None:
        """Before a send: what arrived that no command asked for, if anything.

        Only while the replies owed can be counted and none is. A 421 is not unsolicited: a
        server may say it at any time and close (RFC 5321 §3.8); the next read takes it.
        """
        if self.owed != 0:
            return None
        pending = self._parser.pending
        if not pending or pending.startswith(b"421"):
            return None
        return Unsolicited(pending)

    def sent(self, replies: int | None = 1, owner: object = None) -> None:
        """The client sent commands owing `replies` replies (a pipelined group owes one each,
        RFC 2920); None when they cannot be counted, and from then on the count is unknown.
        `owner` is what sent them (a step), given back by `owed_to` until their replies are read."""
        self._in_data = False
        if replies is None or self.owed is None:
            self.owed = None
            self._owners.clear()
        else:
            self.owed += replies
            self._owners.extend([owner] * replies)

    def owed_to(self) -> tuple[object, ...]:
        """The owner of each reply still owed, oldest first (None for the banner's); empty when none
        is owed or the count was lost."""
        return tuple(self._owners)

    def out_of_step(self) -> str | None:
        """Why a command sent now might not be read as one, or its reply not be told apart; None when the
        session is in step (every reply owed has come, nothing unread, not in the middle of DATA or STARTTLS)."""
        if self._parser.failed:
            return "after a protocol error"
        if self.ended_by is not None:
            return f"the server ended the session ({self.ended_by})"
        if self.owed is None:
            return "raw bytes were sent whose replies cannot be counted"
        if self.owed:
            return f"{self.owed} repl{'y is' if self.owed == 1 else 'ies are'} still owed"
        if self._starttls_asked or self._held:
            return "in the middle of STARTTLS"
        if self._in_data:
            return "the server is reading message text (after 354)"
        if self._parser.pending:
            return "bytes came that no command asked for"
        return None

    def answered_early(self) -> bool:
        """A reply line has arrived while the client was still sending (a server refusing a body)."""
        return b"\n" in self._parser.pending

    # -- what replies teach ------------------------------------------------------------------
    def learn(self, command: str, reply: Reply) -> bool:
        """What the reply to `command` says about the session; True when it changed the keywords in force.

        A 250 to EHLO (RFC 5321 §4.1.1.1) or LHLO (RFC 2033) puts its keywords in force; it and
        the first 220 name the server's host (for the PTR check). A 220 to XCLIENT is a new greeting:
        what EHLO said is void until EHLO is sent again.
        """
        if restarts_session(command, reply.code):
            self.keywords = {}
            return True
        self._count_recipients(command, reply.code)
        is_ehlo = reply.code == 250 and command.upper().startswith(("EHLO", "LHLO"))
        if is_ehlo:
            self.keywords = reply.keywords()
        if is_ehlo or (reply.code == 220 and not self.greeting_hosts):
            words = reply.lines[0].split() if reply.lines else []  # "220  " is a valid reply of blank text
            if words:
                self.greeting_hosts.append(words[0])
        return is_ehlo

    def _count_recipients(self, command: str, code: int) -> None:
        verb = command[:4].upper()
        if verb == "LHLO" and code == 250:
            self.lmtp = True
        if verb in ("MAIL", "RSET", "LHLO", "EHLO", "HELO"):
            self.accepted_recipients = 0
            self.smtputf8 = verb == "MAIL" and 200 <= code < 300 and "SMTPUTF8" in _parameters(command)
        elif verb == "RCPT" and 200 <= code < 300:
            self.accepted_recipients += 1

    def body_replies(self) -> int:
        """Replies owed to the end of a message's data: one, or in LMTP one per recipient accepted, in RCPT
        order (RFC 2033 §4.2); one still when no accepted recipient was judged (the server answers 503)."""
        return max(1, self.accepted_recipients) if self.lmtp else 1

    # -- STARTTLS (RFC 3207) -----------------------------------------------------------------
    def starttls_sent(self) -> None:
        """The client sent STARTTLS: if its reply is 220, no byte after it is taken as a reply."""
        self._starttls_asked = True

    def starttls_accepted(self) -> Injection | None:
        """After the 220 to STARTTLS: the reply parser starts afresh (RFC 3207 §4.2).

        Any byte already received past the 220 was sent in plaintext to be read as if it came
        under TLS: response injection (cf. CVE-2011-0411). It is returned, not kept.
        """
        injected = self._parser.pending
        self._parser = ReplyParser(strict=self.strict)
        self._held = False
        return Injection(injected) if injected else None

    def tls_established(self, late: bytes = b"") -> Injection | None:
        """The handshake is done; `late` is plaintext the transport held from around it.

        With none, TLS is in force and what EHLO said before it is void (RFC 3207 §4.2): the
        client must say EHLO again.
        """
        if late:
            return Injection(late, handshake=True)
        self.tls = True
        self.keywords = {}
        return None


def _parameters(command: str) -> list[str]:
    """The keywords of a MAIL or RCPT command's parameters, after its path (RFC 5321 §4.1.2)."""
    return [word.split("=", 1)[0] for word in command.upper().rpartition(">")[2].split()]
