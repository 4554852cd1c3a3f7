"""`smtprun record`: an interactive SMTP session, like telnet, written down as a plan.

Each line typed is sent with CRLF and becomes a `send:` step expecting the code that came back; a
body typed after DATA's 354 becomes one `data:` step. A reader thread shows replies as they arrive,
even unasked ones, while the prompt waits; the plan is read back with `read_plan` before it is kept.

This module is the command: its arguments, the connection it opens and the plan it writes. The typed
session is `record_session`; the socket and its reader thread are `live`.
"""

from __future__ import annotations

import argparse
import os
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

from runner.arguments import host_port, seconds
from runner.errors import PlanError
from runner.net import tls as tlsinfo
from runner.net.address import hostport
from runner.plan.write import literal, plan_text, printable
from runner.status import ExitStatus
from runner.tools.live import Display, LiveConnection, Terminal, describe_tls
from runner.tools.record_session import UNVERIFIED_HINT, Recorder

__all__ = ["add_arguments", "run"]

HISTORY_FILE = "~/.smtprun_history"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", type=host_port, metavar="HOST[:PORT]",
                        help="the server; IPv6 as [::1]:25; port 25, or 465 with --tls implicit")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the plan here (default: standard output)")
    parser.add_argument("--timeout", type=seconds, default=30.0,
                        help="seconds to wait for the connection and for each reply (default 30)")
    parser.add_argument("--tls", choices=("none", "implicit"), default="none",
                        help="implicit: TLS from the first byte (port 465, RFC 8314)")
    parser.add_argument("--cafile", metavar="PEM", help="CA certificates to trust instead of the system's")
    parser.add_argument("--no-verify", action="store_true", help="do not check the server's certificate")
    parser.add_argument("--name", help="the plan's name (default: its file name)")


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
