"""`smtprun record`: an interactive SMTP session, like telnet, written down as a plan.

Each line typed is sent with CRLF and becomes a `send:` step expecting the code that came back; a
body typed after DATA's 354 becomes one `data:` step. A reader thread shows replies as they arrive,
even unasked ones, while the prompt waits; the plan is read back with `read_plan` before it is kept.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import signal
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TextIO

from runner.arguments import seconds
from runner.errors import PlanError
from runner.net import tls as tlsinfo
from runner.net.address import hostport, parse_hostport
from runner.plan.write import RecordedStep, literal, plan_text, printable
from runner.smtp.protocol import DataEncoder, encode_line
from runner.status import ExitStatus
from runner.template import is_template
from runner.tools.live import CHUNK, Display, Handshake, LiveConnection, Terminal, describe_tls

__all__ = ["add_arguments", "run"]

PROMPT = "C: "
HISTORY_FILE = "~/.smtprun_history"
HELP = """\
Lines are sent as typed, with CRLF. A line starting with / is a local command (// sends one /):
  /tls        STARTTLS and the TLS handshake (recorded as a starttls: step)
  /file PATH  right after DATA's 354: send this file as the body (recorded as data_file:)
  /quit       close the connection and write the plan; end of input (Ctrl-D) does the same
  /help       this text
After DATA's 354, type the body and end it with a line holding a lone "."."""
UNVERIFIED_HINT = ("give --cafile PEM (the CA that issued the server's certificate) to trust it, "
                   "or --no-verify to record without checking it")


def _target(text: str) -> tuple[str, int | None]:
    """HOST, HOST:PORT, [IPv6]:PORT, [IPv6] or a bare IPv6 address."""
    try:
        return parse_hostport(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; expected HOST[:PORT] (IPv6 as [::1]:25)") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", type=_target, metavar="HOST[:PORT]",
                        help="the server; IPv6 as [::1]:25; port 25, or 465 with --tls implicit")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the plan here (default: standard output)")
    parser.add_argument("--timeout", type=seconds, default=30.0,
                        help="seconds to wait for the connection and for each reply (default 30)")
    parser.add_argument("--tls", choices=("none", "implicit"), default="none",
                        help="implicit: TLS from the first byte (port 465, RFC 8314)")
    parser.add_argument("--cafile", metavar="PEM", help="CA certificates to trust instead of the system's")
    parser.add_argument("--no-verify", action="store_true", help="do not check the server's certificate")
    parser.add_argument("--name", help="the plan's name (default: its file name)")


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
        self.record({"send": self.credential_free(line)}, event)
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
        self.record({"data": literal("".join(line + "\n" for line in lines))}, self.wait())

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
        self.record({"data_file": literal(full)}, self.wait())
        return True

    def starttls(self) -> None:
        if self.conn.tls:
            return self.display.note("TLS is already in force")
        self.conn.upgrade = self.context
        self.conn.send(b"STARTTLS\r\n")
        event = self.wait()
        if event[0] != "reply" or event[1].code != 220:  # 454, 502...: a reply like any other
            return self.record({"send": "STARTTLS"}, event)
        step = RecordedStep({"starttls": dict(self.tls_options)})
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


def _connect_problem(exc: OSError, where: str, timeout: float) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {where}: {exc.strerror}"
    if isinstance(exc, ssl.SSLError):
        return tlsinfo.describe_failure(exc)
    if isinstance(exc, TimeoutError):
        return f"connection to {where} timed out after {timeout:g}s"
    return f"cannot connect to {where}: {exc.strerror or exc}"


def _history() -> Callable[[], None] | None:
    """Line editing (readline) with a history file; None where Python has no readline."""
    try:
        import readline
    except ImportError:
        return None

    path = os.path.expanduser(HISTORY_FILE)
    with suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(1000)

    def save() -> None:
        with suppress(OSError):
            readline.write_history_file(path)

    return save


def _write_plan(text: str, output: Path | None, out: TextIO, err: TextIO, secrets: list[str]) -> ExitStatus:
    """Read the plan back as `smtprun` will (its secrets given), then put it in place atomically (temp file +
    rename)."""
    from runner.plan import read_plan

    tmp, problems = None, ""
    try:
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".smtprun-record-", suffix=".yaml", dir=output and output.parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        try:
            read_plan(tmp, {name: "" for name in secrets})
        except PlanError as exc:
            problems = str(exc).replace(tmp, str(output or "<plan>"))
        if output is None:
            out.write(text)
        else:
            os.chmod(tmp, 0o644)
            os.replace(tmp, output)
            tmp = None
    except OSError as exc:
        err.write(f"smtprun record: cannot write {output or 'the plan'}: {exc.strerror or exc}; here it is:\n")
        out.write(text)
        return ExitStatus.ERROR
    finally:
        if tmp is not None:
            with suppress(OSError):
                os.unlink(tmp)
    if problems:
        err.write(f"{problems}\nsmtprun record: the recorded plan does not validate (written all the same)\n")
    return ExitStatus.ERROR if problems else ExitStatus.OK


def _open(args: argparse.Namespace, port: int, context: ssl.SSLContext, display: Display,
          err: TextIO) -> socket.socket | ExitStatus:
    host = args.target[0]
    where = hostport(host, port)
    display.note(f"connecting to {printable(where)}" + (" (implicit TLS)" if args.tls == "implicit" else ""))
    try:
        sock = socket.create_connection((host, port), timeout=args.timeout)
        if args.tls == "implicit":
            sock = context.wrap_socket(sock, server_hostname=host)
    except OSError as exc:
        hint = f"; {UNVERIFIED_HINT}" if isinstance(exc, ssl.SSLCertVerificationError) else ""
        err.write(f"smtprun record: {_connect_problem(exc, printable(where), args.timeout)}{hint}\n")
        return ExitStatus.FAILED
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    if isinstance(sock, ssl.SSLSocket):
        display.note(describe_tls(sock, context))
    display.note(f"connected to {printable(where)}; /help lists the local commands")
    return sock


def _session(recorder: Recorder, display: Display) -> ExitStatus:
    """Run the typed session to its end; what was recorded is kept whatever ends it."""
    try:
        recorder.session()
    except KeyboardInterrupt:
        if not recorder.conn.interrupted:
            display.note("interrupted: writing what was recorded")
            return ExitStatus.INTERRUPTED
    except OSError as exc:
        display.note(f"stopped: {exc.strerror or exc}")
        return ExitStatus.FAILED
    return ExitStatus.FAILED if recorder.failed else ExitStatus.OK


def run(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    host, port = args.target
    implicit = args.tls == "implicit"
    port = port or (465 if implicit else 25)  # RFC 8314 §7.3
    where = hostport(host, port)
    output = Path(args.output) if args.output else None
    if output is not None and output.is_dir():
        err.write(f"smtprun record: {output} is a directory; -o takes a file name\n")
        return ExitStatus.USAGE
    try:
        context = tlsinfo.client_context(not args.no_verify, args.cafile)
    except OSError as exc:
        err.write(f"smtprun record: cannot use --cafile {args.cafile}: {exc.strerror or exc}\n")
        return ExitStatus.USAGE
    interactive = stdin is sys.stdin and stdin.isatty() and sys.stdout.isatty()
    save_history = _history() if interactive else None
    display = Display(out if output else err, redraw=save_history is not None)  # without -o, stdout is the plan's
    sock = _open(args, port, context, display, err)
    if isinstance(sock, ExitStatus):
        return sock
    on_main_thread = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_kill")
    conn = LiveConnection(sock, host, args.timeout, display, interrupt=interactive and on_main_thread)
    recorder = Recorder(conn, Terminal(display, stdin, interactive), args, context, output and output.resolve().parent)
    try:
        status = _session(recorder, display)
    finally:
        conn.close()
        if save_history is not None:
            save_history()
    if not any(step.fields for step in recorder.steps):
        err.write("smtprun record: nothing was recorded; no plan written\n")
        return status or ExitStatus.FAILED
    target: dict[str, Any] = {"host": literal(host), "port": port, "timeout": args.timeout}
    if implicit:
        target |= {"tls": "implicit", **recorder.tls_options}
    text = plan_text(recorder.steps, where, target, output=args.output, name=args.name, secrets=recorder.secrets)
    written = _write_plan(text, output, out, err, recorder.secrets)
    if output is not None and written == ExitStatus.OK:
        display.note(f"plan written to {printable(str(output))}")
    return status or written


def _main() -> int:
    parser = argparse.ArgumentParser(prog="smtprun record", description="Record an SMTP session as a plan.")
    add_arguments(parser)
    return run(parser.parse_args(), sys.stdout, sys.stderr, sys.stdin)


if __name__ == "__main__":
    sys.exit(_main())
