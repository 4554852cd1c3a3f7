"""The typed session of `smtprun record`: each line read from the user is sent, and each exchange becomes
a recorded step (a body after DATA's 354 one `data:` step, /tls a `starttls:` step); credentials typed
during AUTH are kept out of the plan as secrets."""

from __future__ import annotations

import argparse
import os
import queue
import re
import ssl
from contextlib import suppress
from pathlib import Path
from typing import Any

from runner.plan.actions import DATA, DATA_FILE, SEND, STARTTLS
from runner.plan.write import RecordedStep, literal, printable
from runner.smtp.protocol import DataEncoder, encode_line
from runner.template import is_template
from runner.tools.live import CHUNK, Handshake, LiveConnection, Terminal

__all__ = ["HELP", "UNVERIFIED_HINT", "Recorder"]

PROMPT = "C: "
HELP = """\
Lines are sent as typed, with CRLF. A line starting with / is a local command (// sends one /):
  /tls        STARTTLS and the TLS handshake (recorded as a starttls: step)
  /file PATH  right after DATA's 354: send this file as the body (recorded as data_file:)
  /quit       close the connection and write the plan; end of input (Ctrl-D) does the same
  /help       this text
After DATA's 354, type the body and end it with a line holding a lone "."."""
UNVERIFIED_HINT = ("give --cafile PEM (the CA that issued the server's certificate) to trust it, "
                   "or --no-verify to record without checking it")


class Recorder:
    """The session: reads what the user types, sends it, and records each exchange as a step."""

    def __init__(self, conn: LiveConnection, terminal: Terminal, args: argparse.Namespace, context: ssl.SSLContext,
                 plan_dir: Path | None) -> None:
        self.conn, self.display = conn, terminal.display
        self.stdin, self.interactive = terminal.stdin, terminal.interactive
        self.args, self.context, self.plan_dir = args, context, plan_dir
        self.tls_options: dict[str, Any] = {"verify": False} if args.no_verify else {}
        if args.cafile:
            self.tls_options["cafile"] = literal(str(Path(args.cafile).resolve()))
        self.steps: list[RecordedStep] = []
        self.secrets: list[str] = []  # credentials typed during AUTH, kept out of the plan
        self.in_auth = False  # the last reply was a 334 to an AUTH exchange (RFC 4954 §4)
        self.done = False
        self.failed = False  # the session could not go on (the TLS handshake failed): exit 1

    def read(self) -> str | None:
        """The next line typed, without its line end; None at end of input or once the server left."""
        if not self.interactive:
            line = self.stdin.readline()
            if not line:
                return None
            line = line.rstrip("\n").removesuffix("\r")
            self.display.show(PROMPT + printable(line))
            return line
        with self.display.lock:
            self.display.prompt = PROMPT
        try:
            return input(PROMPT)
        except (EOFError, KeyboardInterrupt) as exc:
            self.display.stream.write("\n")  # readline leaves the cursor after the prompt
            if isinstance(exc, EOFError) or self.conn.interrupted:
                return None
            raise
        finally:
            with self.display.lock:
                self.display.prompt = None

    def wait(self, timeout: float | None = None) -> tuple[str, Any]:
        try:
            return self.conn.events.get(timeout=timeout or self.args.timeout)
        except queue.Empty:
            return "timeout", None

    def record(self, fields: dict[str, Any], event: tuple[str, Any], comment: str = "") -> None:
        kind, value = event
        step = RecordedStep(fields, comment)
        if kind == "reply":
            fields["expect"], step.reply = value.code, value.summary()[4:]
        elif kind == "closed":
            fields["expect"] = "closed"
            self.display.note("the server closed the connection")
        else:
            step.comment = value if kind == "error" else f"no reply within {self.args.timeout:g}s"
            self.display.note(step.comment)
        self.done = self.done or kind in ("closed", "error")
        self.steps.append(step)

    def session(self) -> None:
        self.record({}, self.wait())  # the banner
        while not self.done:
            self.take_unasked()
            line = None if self.done else self.read()
            self.take_unasked()  # what came while the line was typed goes before it
            if self.done or line is None or line == "/quit":
                return
            if line == "/help":
                self.display.show(HELP)
            elif line == "/tls":
                self.starttls()
            elif line.startswith("/file"):
                self.display.note("/file sends a body: send DATA first, then /file PATH after its 354")
            elif line.startswith("/") and not line.startswith("//"):
                self.display.note(f"unknown command {printable(line.split()[0])}; /help lists them")
            else:
                self.command(line.removeprefix("/"))

    def take_unasked(self) -> None:
        """Replies no command waited for: unasked (421 before a close), or later than --timeout."""
        while not self.done and not self.conn.events.empty():
            event = self.conn.events.get()
            if event[0] == "closed":
                self.done = True
                self.display.note("the server closed the connection")
            else:
                self.record({}, event, "a reply nothing waited for (unasked, or late)")

    def command(self, line: str) -> None:
        try:
            data = encode_line(line)
        except (ValueError, UnicodeEncodeError) as exc:
            return self.display.note(f"not sent: {exc}")
        self.conn.send(data)
        event = self.wait()
        self.record({SEND: self.credential_free(line)}, event)
        self.in_auth = event[0] == "reply" and event[1].code == 334 and (self.in_auth or _AUTH.match(line) is not None)
        if event[0] == "reply" and event[1].code == 354:
            self.body()
        elif event[0] == "reply" and event[1].code == 221:
            self.done = True  # RFC 5321 §4.1.1.10: the server closes after QUIT's 221

    def credential_free(self, line: str) -> str:
        """The line as the plan keeps it: an AUTH initial response, or an answer to a 334, becomes a secret."""
        initial = _AUTH_INITIAL.match(line)
        if not (initial or (self.in_auth and line.strip() not in ("", "*"))):
            return literal(line)
        name = f"auth_{len(self.secrets) + 1}"
        self.secrets.append(name)
        _forget_last_history_line(self.interactive)
        self.display.note(f"credential kept out of the plan: give it with --secret {name}=... "
                          f"(or SMTPRUN_{name.upper()}=...) when you run it")
        return (f"{initial[1]}{{{{ {name} }}}}") if initial else f"{{{{ {name} }}}}"

    def body(self) -> None:
        """RFC 5321 §4.1.1.4: lines up to a lone ".", sent dot-stuffed as they are typed."""
        self.display.note('the body: end it with a line holding a lone "."; /file PATH sends a file instead')
        encoder, lines = DataEncoder(), []
        while (line := self.read()) != ".":
            if line is None or line == "/quit" or self.conn.ended:
                self.done = not self.conn.ended  # else the server's close is still to be taken
                return self.display.note("the body was not finished: nothing recorded for it")
            if line.startswith("/file") and line[5:6] in ("", " ") and not lines:
                if self.send_file(line[6:].strip()):
                    return
            elif line == "/help":
                self.display.show(HELP)
            elif line.startswith("/") and not line.startswith("//"):
                self.display.note("in a body: /file PATH (first), /quit and /help; // sends one /")
            else:
                try:
                    self.conn.send(encoder.encode(line.removeprefix("/").encode("utf-8") + b"\n"))
                except UnicodeEncodeError as exc:
                    self.display.note(f"not sent: {exc}")
                    continue
                lines.append(line.removeprefix("/"))
        self.conn.send(encoder.end())
        self.record({DATA: literal("".join(line + "\n" for line in lines))}, self.wait())

    def send_file(self, name: str) -> bool:
        path, encoder, sent = Path(name).expanduser(), DataEncoder(), False
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    self.conn.send(encoder.encode(chunk))
                    sent = True
        except OSError as exc:
            if sent:
                raise
            self.display.note(f"cannot read {printable(name)}: {exc.strerror or exc}")
            return False
        self.conn.send(encoder.end())
        full = str(path.resolve())
        if self.plan_dir is not None and not is_template(full):  # data_file: is relative to the plan
            with suppress(ValueError):  # not on the plan's drive
                full = os.path.relpath(full, self.plan_dir)
        self.record({DATA_FILE: literal(full)}, self.wait())
        return True

    def starttls(self) -> None:
        if self.conn.tls:
            return self.display.note("TLS is already in force")
        self.conn.upgrade = self.context
        self.conn.send(b"STARTTLS\r\n")
        event = self.wait()
        if event[0] != "reply" or event[1].code != 220:  # 454, 502...: a reply like any other
            return self.record({SEND: "STARTTLS"}, event)
        step = RecordedStep({STARTTLS: dict(self.tls_options)})
        self.steps.append(step)  # replayed, it fails where this handshake failed
        kind, outcome = self.wait(self.args.timeout + 1)
        if isinstance(outcome, Handshake) and outcome.problem is None:
            return None
        problem = outcome.problem if isinstance(outcome, Handshake) else outcome if kind == "error" else \
            "TLS handshake timed out" if kind == "timeout" else "the connection ended in the TLS handshake"
        step.comment = f"TLS did not start: {problem}"
        self.display.note(f"{problem}; the session cannot go on")
        if isinstance(outcome, Handshake) and outcome.unverified:
            self.display.note(UNVERIFIED_HINT)
        self.done = self.failed = True


_AUTH = re.compile(r"(?i)\s*AUTH\s")
_AUTH_INITIAL = re.compile(r"(?i)(\s*AUTH\s+\S+\s+)\S")  # AUTH mechanism initial-response (RFC 4954 §4)


def _forget_last_history_line(interactive: bool) -> None:
    """Keep a typed credential out of the readline history file."""
    if not interactive:
        return
    with suppress(ImportError, ValueError):
        import readline

        length = readline.get_current_history_length()
        if length:
            readline.remove_history_item(length - 1)
