"""What a step action may use of the running case: the narrow interface `RunningCase` provides.

Actions (runner/run/steps.py) see the case only through this, so they cannot reach into its
state: the SMTP session's rules, the transcript and the result are changed by these methods.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from runner.plan.types import Step, Target
from runner.redact import Redactor
from runner.results import StepResult
from runner.smtp.protocol import Reply

__all__ = ["StepContext"]


class StepContext(Protocol):
    redactor: Redactor  # secrets learned while a step runs (AUTH blobs) are added here
    target: Target

    # -- what the case knows -------------------------------------------------------------
    @property
    def server_host(self) -> str:
        """The server's host name: for TLS checks and DNS checks."""
        ...

    @property
    def peer(self) -> str:
        """host:port connected to."""
        ...

    @property
    def local_address(self) -> str | None:
        """The address the case connected from, None when not known."""
        ...

    @property
    def greeting_hosts(self) -> list[str]:
        """Host names the banner and EHLO replies gave."""
        ...

    @property
    def keywords(self) -> Mapping[str, str]:
        """The EHLO keywords in force."""
        ...

    @property
    def smtputf8(self) -> bool:
        """This transaction's MAIL carried SMTPUTF8 and was accepted: UTF-8 header fields may be sent (RFC 6531)."""
        ...

    @property
    def tls_facts(self) -> dict[str, Any] | None:
        """The TLS session's facts (version, cipher, certificate), None without TLS."""
        ...

    @property
    def tls_object(self) -> ssl.SSLObject | None: ...

    def port(self) -> int: ...

    # -- the closed loop (runner/run/mailsteps.py) -------------------------------------------
    @property
    def message_id(self) -> str:
        """The case's `{{ message_id }}`, without angle brackets."""
        ...

    @property
    def started_at(self) -> float:
        """Wall time (time.time()) the case started: no older message can be the one it sent."""
        ...

    @property
    def accepted_at(self) -> float | None:
        """Wall time of the last 250 to the end of a message's data, None before one."""
        ...

    def accepted(self, reply: Reply | None) -> None:
        """A reply to the end of a message's data: a 250 is when the server took it (for `latency:`)."""
        ...

    @property
    def delivered_signatures(self) -> tuple[tuple[str, str], ...]:
        """(d=, s=) of each DKIM-Signature field in the copies this case's expect_delivery steps have read so far,
        in order: the facts of those steps (runner.mail.auth.DkimVerdict)."""
        ...

    @property
    def wants_message_id(self) -> bool:
        """A later step finds the message by its Message-ID: a body without one gets the case's."""
        ...

    @property
    def nameservers(self) -> tuple[tuple[str, int], ...]:
        """The plan's name servers (host, port); empty for the system's."""
        ...

    @property
    def mail_listeners(self) -> Any:
        """The listen:// servers the case started (runner.mail.listen.Listeners)."""
        ...

    def text(self, value: str) -> str:
        """A plan value rendered in the step's scope; StepFailed when it cannot be."""
        ...

    def note(self, text: str) -> None:
        """A line of the transcript that is not on the wire."""
        ...

    def warn(self, text: str) -> None:
        """A warning that fails nothing (an optional record absent, a weak key): in the transcript and among the
        case's notes, which every report shows."""
        ...

    def note_closed(self, by: str = "server closed the connection") -> None:
        """Say in the transcript, once, that the connection was closed, and by whom."""
        ...

    # -- the wire -----------------------------------------------------------------------
    async def send(self, data: bytes, deadline: float, replies: int | None = 1) -> None:
        """Send bytes owing `replies` replies (None: uncountable, as raw: is)."""
        ...

    async def send_part(self, data: bytes, deadline: float) -> bool:
        """Send one piece whose replies cannot be counted; False when the connection is gone."""
        ...

    async def listen(self, until: float, most: int | None = None) -> tuple[list[Reply], bool]:
        """The replies that arrive before `until` (or the first `most`), and whether the server closed."""
        ...

    async def send_starttls(self, deadline: float) -> None:
        """Send STARTTLS; a 220 to it ends what is read in plaintext."""
        ...

    async def send_stream(self, chunks: Iterable[bytes], deadline: float, what: str,
                          shown_bytes: int = ...) -> None:
        """Send a message body, dot-stuffed, and its terminator; it owes one reply. The transcript keeps its
        first `shown_bytes` (by default as many as an entry holds)."""
        ...

    async def reply(self, deadline: float) -> Reply:
        """The next reply; StepFailed when none comes."""
        ...

    def close(self) -> None: ...

    def end_plaintext(self) -> None:
        """After a 220 to STARTTLS: StepFailed when plaintext followed it (RFC 3207 §4.2)."""
        ...

    async def start_tls(self, context: ssl.SSLContext, server_name: str, verify: bool,
                        deadline: float) -> dict[str, Any]:
        """The TLS handshake; TLS in force afterwards, its facts returned. StepFailed when it fails."""
        ...

    def learn(self, command: str, reply: Reply) -> bool:
        """What a reply to `command` teaches the session: EHLO keywords, XCLIENT's new greeting, the recipients
        an LMTP server accepted. True when the keywords in force changed."""
        ...

    # -- judging ------------------------------------------------------------------------
    def check(self, spec: Any, reply: Reply, context: str = "") -> None:
        """StepFailed unless `reply` meets the expectation `spec`."""
        ...

    def capture(self, step: Step, reply: Reply, out: StepResult) -> None:
        """Take the step's captures from `reply` into the case's variables."""
        ...
