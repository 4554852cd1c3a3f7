"""A case's connection as its steps use it: a transport, the sans-IO SMTP session, the transcript.

Every byte the case sends or receives passes here: it is recorded, handed to the SMTP session
(runner/smtp/session.py), which says what it means, and that becomes a reply or a step's failure.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any

from runner.errors import ConnectionLost, ProtocolError, StepFailed
from runner.net import tls as tlsinfo
from runner.net.transport import Transport
from runner.results import RECV, SEND, CaseResult
from runner.run import unread
from runner.run.transcript import MAX_EVENT_BYTES, Transcript
from runner.smtp.protocol import DataEncoder, Reply
from runner.smtp.session import NEED_DATA, Closed, SmtpSession, TimedOut
from runner.text import excerpt

__all__ = ["Wire"]

_INJECTION = "response injection (RFC 3207 §4.2, cf. CVE-2011-0411)"


class Wire:
    """Sends, reads and upgrades one connection for a case; `conn` is None until it is open."""

    def __init__(self, result: CaseResult, transcript: Transcript, keywords: dict[str, str],
                 strict_replies: bool = False) -> None:
        self.result = result
        self.record = transcript.record  # (direction, bytes): what went over the wire, for the transcript
        self.redact = transcript.redactor.text  # the case's secrets, masked in what a server's text is quoted in
        self.note = transcript.note  # (text): a line of the transcript that is not on the wire
        self.smtp = SmtpSession(keywords, strict_replies)
        self.warned_8bit = False
        self.broken: str | None = None  # why the connection is no longer in step (injection, failed TLS, a write)
        self.close_noted = False  # the transcript says the connection was closed
        self.conn: Transport | None = None
        self.cut_short = False  # the server replied mid-send: the rest of this step's bytes are not sent
        self.patience = 0.0  # seconds the step in progress waits for its reply, for "no reply within 30s"
        self.step: Any = None  # the step in progress: the replies owed to what it sends are its own

    # -- what the connection knows ------------------------------------------------------
    @property
    def peer(self) -> str:
        assert self.conn is not None
        return self.conn.peer

    @property
    def tls_object(self) -> ssl.SSLObject | None:
        return self.conn.tls_object if self.conn is not None else None

    @property
    def local_address(self) -> str | None:
        """The address the case connected from; None when the transport cannot say (a scripted one)."""
        if self.conn is None:
            return None
        return getattr(self.conn, "here", None) or self.conn.local

    @property
    def tls_facts(self) -> dict[str, Any] | None:
        return self.result.tls

    @property
    def keywords(self) -> dict[str, str]:
        return self.smtp.keywords

    @property
    def greeting_hosts(self) -> list[str]:
        return self.smtp.greeting_hosts

    @property
    def smtputf8(self) -> bool:
        return self.smtp.smtputf8

    def out_of_step(self) -> str | None:
        """Why a QUIT now could not end the session cleanly, or None when it can."""
        if self.over:
            return self.over
        assert self.conn is not None
        if arrived := self.conn.buffered():
            self.smtp.receive(arrived)
        return self.broken or self.smtp.out_of_step()

    @property
    def over(self) -> str | None:
        """Why nothing more can be said on this connection, or None while it is open."""
        if self.conn is None or self.conn.closed:
            return "the connection is closed"
        if self.smtp.ended_by is not None:
            return f"the server ended the session ({self.smtp.ended_by})"
        return None

    def close(self) -> None:
        assert self.conn is not None
        self.conn.close()

    # -- sending ------------------------------------------------------------------------
    async def send(self, data: bytes, deadline: float, replies: int | None = 1) -> None:
        """Send a command (or, with replies=None, bytes whose replies cannot be counted)."""
        if self.smtp.owed:  # replies still owed: not judged on one an earlier step left unread
            await unread.settle(self, deadline)
        self.refuse_unsolicited(data)
        self.record(SEND, data)
        self.smtp.sent(replies, self.step)
        await self.write(data, deadline)

    async def send_part(self, data: bytes, deadline: float) -> bool:
        """Send one piece of bytes whose replies cannot be counted (raw:, smuggle:); False, sending
        nothing, when the server has closed the connection or it breaks while sending."""
        assert self.conn is not None
        if self.conn.closed:
            return False
        if self.smtp.owed:
            await unread.settle(self, deadline)
        self.record(SEND, data)
        self.smtp.sent(None)
        try:
            await self.conn.write(data, deadline)
        except asyncio.TimeoutError:
            raise StepFailed("timed out sending: the server is not reading") from None
        except (ConnectionLost, OSError):
            return False
        return True

    async def send_starttls(self, deadline: float) -> None:
        """STARTTLS (RFC 3207 §4); once a 220 answers it, nothing after the 220 is read as a reply."""
        self.smtp.starttls_sent()
        await self.send(b"STARTTLS\r\n", deadline)

    def learn(self, command: str, reply: Reply) -> bool:
        """What a reply to `command` teaches the session (SmtpSession.learn): True when the keywords changed."""
        return self.smtp.learn(command, reply)

    def refuse_unsolicited(self, about_to_send: bytes) -> None:
        """Fail when the server has said something no command asked for (RFC 5321 §4.2)."""
        if self.conn is None:
            return
        if arrived := self.conn.buffered():
            self.smtp.receive(arrived)
        early = self.smtp.unsolicited()
        if early is not None:
            self.record(RECV, early.data)
            what = excerpt(about_to_send.split(b"\r\n", 1)[0].decode("utf-8", "replace"), redact=self.redact)
            raise StepFailed(f"the server sent {len(early.data)} bytes that no command asked for, before {what}")

    async def send_stream(self, chunks: Iterable[bytes], deadline: float, what: str,
                          shown_bytes: int = MAX_EVENT_BYTES) -> None:
        """Stream a body with dot-stuffing (RFC 5321 §4.5.2), chunk by chunk; recorded as one entry, of which
        the first `shown_bytes` (at most MAX_EVENT_BYTES) are kept.

        Each encoded chunk is written when the next is ready, so the last one goes out with the
        terminator in a single write.
        """
        if self.smtp.owed:
            await unread.settle(self, deadline)
        self.refuse_unsolicited(b"the message body")
        encoder = DataEncoder()
        keep = min(shown_bytes, MAX_EVENT_BYTES)
        shown, total, held = bytearray(), 0, b""
        for raw in chunks:
            total += len(raw)
            chunk = encoder.encode(raw)
            if len(shown) <= keep:
                shown += chunk[: keep + 1 - len(shown)]
            if held:
                await self.write(held, deadline)
            held = chunk
        tail = encoder.end()
        self.record(SEND, bytes(shown[:keep]) + (b"" if len(shown) <= keep else
                    f"... [{what}: {total} bytes in all]\r\n".encode()) + tail)
        self.smtp.sent(self.smtp.body_replies(), self.step)  # to the end of data: in LMTP, one per recipient
        await self.write(held + tail, deadline)

    async def write(self, data: bytes, deadline: float) -> None:
        """Write without recording (the caller records what it sent).

        A server may refuse a message while it is still arriving (552 too big, then close): when
        it stops taking bytes and a reply is waiting, the rest of this step is not sent and the
        reply is judged as the step's answer.
        """
        assert self.conn is not None
        if self.cut_short:
            return
        try:
            await self.conn.write(data, deadline)
            return
        except asyncio.TimeoutError:
            why = "timed out sending: the server is not reading"
        except (ConnectionLost, OSError) as exc:
            why = str(exc)
        if arrived := self.conn.buffered():
            self.smtp.receive(arrived)
        self.broken = "a write failed"
        if self.smtp.answered_early():
            self.cut_short = True
            self.note(f"the server answered and stopped taking data before the client finished sending ({why})")
            return
        raise StepFailed(why)

    # -- receiving ----------------------------------------------------------------------
    async def next_reply(self, deadline: float, keep_partial: bool = False) -> Reply | Closed | TimedOut:
        """The next reply, or what ended the wait for it. ConnectionLost when the connection failed.

        With keep_partial, a reply cut by the deadline is not recorded yet: it is read on later."""
        conn, smtp = self.conn, self.smtp
        assert conn is not None
        while True:
            try:
                event = smtp.next_event()
            except ProtocolError as exc:
                self.record(RECV, exc.received)
                why = exc.describe(lambda text: excerpt(text, redact=self.redact))
                raise StepFailed(f"protocol error: {why}") from None
            if event is not NEED_DATA:
                self.record(RECV, event.raw)  # type: ignore[union-attr]  # a Reply
                if event.eight_bit and not self.warned_8bit:  # type: ignore[union-attr]
                    self._warn_8bit()
                return event  # type: ignore[return-value]
            try:
                chunk = await conn.read(deadline)
            except asyncio.TimeoutError:
                return self._partial(smtp.timed_out(), keep_partial)
            if not chunk:
                self.note_closed()
                return self._partial(smtp.closed())
            smtp.receive(chunk)

    def note_closed(self, by: str = "server closed the connection") -> None:
        """The transcript's last word on the connection, said once."""
        if not self.close_noted:
            self.close_noted = True
            self.note(by)

    def warn(self, text: str) -> None:
        """What a step found that is worth knowing but fails nothing: in the transcript and among the case's notes,
        which the console, the HTML page and the JSON show for a passing case too."""
        self.note(f"warning: {text}")
        self.result.notes.append(f"warning: {text}")

    def _warn_8bit(self) -> None:
        """Once a case: the server's text is neither ASCII (RFC 5321 §4.2) nor UTF-8 (RFC 6531)."""
        self.warned_8bit = True
        warning = ("warning: reply text is not UTF-8 (RFC 5321 §4.2 allows ASCII, RFC 6531 UTF-8): read as "
                   "Latin-1, its bytes shown escaped; target strict_replies: true refuses it")
        self.note(warning)
        self.result.notes.append(warning)

    async def listen(self, until: float, most: int | None = None) -> tuple[list[Reply], bool]:
        """The replies that arrive before `until` (all of them, or as soon as `most` have), and whether
        the connection ended. Part of a reply still arriving at `until` stays to be read."""
        replies: list[Reply] = []
        while most is None or len(replies) < most:
            try:
                event = await self.next_reply(until, keep_partial=True)
            except ConnectionLost:
                return replies, True
            if isinstance(event, Reply):
                replies.append(event)
            else:
                return replies, isinstance(event, Closed)
        return replies, False

    def _partial(self, ended: Closed | TimedOut, keep: bool = False) -> Closed | TimedOut:
        if ended.partial and not (keep and isinstance(ended, TimedOut)):
            self.record(RECV, ended.partial)
        return ended

    async def reply(self, deadline: float) -> Reply:
        """The next reply; a closed connection, or none before the deadline, fails the step."""
        try:
            event = await self.next_reply(deadline)
        except ConnectionLost as exc:
            raise StepFailed(str(exc)) from None
        if isinstance(event, Reply):
            return event
        if isinstance(event, TimedOut):
            within = f"within {self.patience:g}s" if self.patience else "before the deadline"
            raise StepFailed(f"timed out mid-reply after {len(event.partial)} bytes (no complete reply {within})"
                             if event.partial else f"no reply {within}")
        raise StepFailed(f"connection closed mid-reply after {event.mid_reply} bytes" if event.mid_reply
                         else "connection closed by the server" + self._per_client_hint())

    def _per_client_hint(self) -> str:
        """A server that closes before its banner while the run holds other connections to it most likely
        limits connections per client (Courier's MAXPERIP, Exim's smtp_accept_max_per_host, Postfix's
        smtpd_client_connection_count_limit)."""
        siblings = self.conn.siblings if self.conn is not None else 0
        if self.smtp.replies or not siblings:
            return ""
        many = siblings > 1
        return (f" before its banner, while {siblings} other connection{'s' if many else ''} of this run to it "
                f"{'were' if many else 'was'} open: the server may limit connections per client (--per-host lowers "
                "how many smtprun opens at once)")

    async def wait_closed(self, deadline: float) -> None:
        """For `expect: closed`: the server must close before the deadline and say nothing more."""
        try:
            event = await self.next_reply(deadline)
        except ConnectionLost:  # reset: closed all the same
            self.note_closed()
            event = Closed()
        if isinstance(event, Closed) and not event.mid_reply:
            return
        if isinstance(event, TimedOut) and not event.partial:
            raise StepFailed("expected the server to close the connection; it stayed open")
        if isinstance(event, Reply):
            raise StepFailed(f"expected the server to close the connection, got {event.summary()}", event)
        what = "timed out" if isinstance(event, TimedOut) else "connection closed"
        raise StepFailed(f"{what} mid-reply after {len(event.partial)} bytes")

    # -- STARTTLS (RFC 3207) ------------------------------------------------------------
    def end_plaintext(self) -> None:
        """After the 220 to STARTTLS: nothing more may have come in plaintext (RFC 3207 §4.2)."""
        assert self.conn is not None
        if arrived := self.conn.buffered():
            self.smtp.receive(arrived)
        injected = self.smtp.starttls_accepted()
        if injected is not None:
            self.broken = "after " + _INJECTION
            self.record(RECV, injected.data)
            raise StepFailed(f"server sent {len(injected.data)} bytes of plaintext after its 220 to STARTTLS: "
                             + _INJECTION)

    async def start_tls(self, context: ssl.SSLContext, server_name: str, verify: bool,
                        deadline: float) -> dict[str, Any]:
        """The handshake; then TLS is in force, the EHLO keywords void, and the session's facts kept."""
        assert self.conn is not None
        try:
            await self.conn.start_tls(context, server_name, deadline)
        except (ConnectionLost, ssl.SSLError, asyncio.TimeoutError, OSError, ConnectionError) as exc:
            why = f"TLS handshake failed: {exc}" if isinstance(exc, ConnectionLost) else tlsinfo.describe_failure(exc)
            self.note(why)  # the transcript shows where the session ended
            self.broken = "after a failed TLS handshake"
            raise StepFailed(why) from None
        # plaintext that raced the upgrade, or data sent before the client spoke
        late = self.smtp.tls_established(self.conn.buffered())
        if late is not None:
            self.broken = "after " + _INJECTION
            self.record(RECV, late.data)
            raise StepFailed(f"server sent {len(late.data)} bytes around the TLS handshake, before the client spoke: "
                             + _INJECTION)
        facts = self.result.tls = tlsinfo.session_facts(self.conn.tls_object, verify)
        return facts
