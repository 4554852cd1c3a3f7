"""The step types a plan may use, and what each one is: the one table every other part reads.

The schema (`schemas/plan.schema.json`) says how each is written; this table says what it does, so that the
builder, the renderer, the scope, the unread-reply check, the engine and the reporters ask it instead of
keeping lists of their own. The function that runs a step type is `do_<name>` in the module of `runner.run`
its row names (`runs_in`; the engine finds it by that name: runner.run.steps.ACTIONS), and a test checks this
table against the schema and the engine. Adding a step type is: its row here, its `do_` function, its schema
entry, its docs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.plan.options import Options

__all__ = ["ACTIONS", "DATA", "DATA_FILE", "EXPECT", "KINDS", "PIPELINE_LINE", "SEND", "STARTTLS", "ActionKind",
           "named"]

EXPECT = "expect"  # a step of `expect:` alone: it reads a reply and sends nothing (no row: it is no action)
PIPELINE_LINE = "send"  # the key of a command line in a `pipeline:` item, as in a step
# The step types a plan writer (the recorder) names: a command, a body, a body from a file, STARTTLS.
SEND, DATA, DATA_FILE, STARTTLS = "send", "data", "data_file", "starttls"


@dataclass(frozen=True)
class ActionKind:
    name: str
    large: tuple[str, ...] = ()  # where its text that goes on the wire is (may render large): "" the value itself
    command: bool = False  # sends a command (or a body) and reads one reply when given expect: or capture:
    ends_data: bool = False  # a message body that ends with CRLF.CRLF (RFC 5321 §4.1.1.4; DataEncoder)
    signed: bool = False  # a `dkim:` beside it signs the body it sends (runner.plan.signcheck, runner.run.dkimsign)
    judges_own: bool = False  # reads and judges the replies it causes itself
    uncounted: bool = False  # after it, which reply answers which command is no longer known
    mailbox: bool = False  # waits for a message in a mailbox (the closed loop)
    password: bool = False  # its `password:` option is a secret from the start
    tls: bool = False  # about the TLS session
    words: tuple[str, ...] = ()  # other words people type for it (`wait:` for `sleep:`): runner.plan.synonyms
    topic: str = ""  # what a failure of it is about, for monitoring (runner.tools.probe_reasons); "": its reply
    runs_in: str = "steps"  # the module of runner.run whose do_<name> runs it, imported the first time it is used
    options: str = ""  # the name of its options class in runner.plan.options (see options_class); "": the value as is

    def options_class(self) -> type[Options] | None:
        """Its options class, or None: runner.plan.options is imported the first time a step that has one is built
        (its dataclasses cost a plan of plain steps a few milliseconds of start-up)."""
        if not self.options:
            return None
        from runner.plan import options

        return getattr(options, self.options)


KINDS: dict[str, ActionKind] = {kind.name: kind for kind in (
    ActionKind("send", large=("",), command=True, words=("command", "cmd", "line", "say", "write", "request")),
    ActionKind("raw", large=("",), uncounted=True, options="Raw"),
    ActionKind("smuggle", judges_own=True, uncounted=True, topic="smuggling", runs_in="smuggle",
               options="Smuggle"),
    ActionKind("data", large=("",), command=True, ends_data=True, signed=True, words=("body", "content", "msg")),
    ActionKind("data_file", command=True, ends_data=True, signed=True,
               words=("file", "body_file", "message_file", "eml", "data_path")),
    ActionKind("data_size", command=True, ends_data=True, words=("size", "body_size", "message_size")),
    ActionKind("message", command=True, ends_data=True, words=("mime", "mime_message", "compose", "build_message"),
               runs_in="message", options="Message"),
    ActionKind("sleep", words=("wait", "pause", "delay", "sleep_seconds", "wait_seconds")),
    ActionKind("close", uncounted=True, words=("disconnect", "hangup", "hang_up")),
    ActionKind("xclient", command=True, words=("x_client",), runs_in="xclient", options="Attributes"),
    ActionKind("xforward", command=True, words=("x_forward",), runs_in="xclient", options="Attributes"),
    ActionKind("starttls", judges_own=True, tls=True, words=("tls", "start_tls", "upgrade"), topic="tls",
               options="ClientTls"),
    ActionKind("auth", judges_own=True, password=True, words=("login", "authenticate", "authentication", "sasl"),
               topic="auth", options="Auth"),
    ActionKind("pipeline", judges_own=True, words=("pipelining", "batch"), options="Pipeline"),
    ActionKind("bdat", large=("data",), judges_own=True, words=("chunk", "chunks", "chunking"), options="Bdat"),
    ActionKind("expect_tls", tls=True, words=("expect_cert", "certificate", "cert"), topic="tls", runs_in="tlssteps",
               options="ExpectTls"),
    ActionKind("tls_offer", judges_own=True, tls=True, words=("tls_audit", "tls_scan", "cipher_scan"), topic="tls",
               runs_in="tlsoffer", options="TlsOffer"),
    ActionKind("expect_dns", words=("dns",), topic="dns", runs_in="dnssteps"),
    ActionKind("expect_delivery", mailbox=True, password=True,
               words=("delivery", "expect_mail", "mailbox", "deliver", "delivered"), topic="delivery",
               runs_in="mailsteps"),
    ActionKind("expect_dsn", mailbox=True, password=True, words=("dsn", "bounce", "expect_bounce"),
               topic="delivery", runs_in="mailsteps"),
)}

ACTIONS: tuple[str, ...] = tuple(KINDS)


def named(trait: str) -> frozenset[str]:
    """The step types that have `trait` (a field of ActionKind that is true)."""
    return frozenset(name for name, kind in KINDS.items() if getattr(kind, trait))
