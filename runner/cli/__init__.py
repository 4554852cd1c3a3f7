"""The command line: arguments in, one call into the program, an ExitStatus out.

`program()` is the main program without error handling; `main()` maps every SmtprunError to its
exit status and message, so no user ever sees a traceback for something they did. Every command is a
module with `main(argv, env)` (its own parser, built from its `add_arguments`), found in COMMANDS.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Sequence
from typing import TextIO

from runner import __version__
from runner.arguments import host_port, name_value, tcp_port
from runner.console import Console
from runner.environment import Environment
from runner.errors import PlanError, SmtprunError, UsageError
from runner.status import ExitStatus

__all__ = ["COMMANDS", "host_port", "main", "name_value", "program", "tcp_port"]

# Each command's module: `main(argv, env) -> int`. check, exporter and merge keep their own exit statuses
# (a monitoring check's 0-3) and report their own usage errors.
COMMANDS = {"run": "runner.cli.run", "validate": "runner.cli.validate", "serve": "runner.cli.serve",
            "record": "runner.cli.record", "check": "runner.tools.monitoring", "exporter": "runner.tools.exporter",
            "merge": "runner.tools.merge", "audit": "runner.cli.audit"}


def program(argv: Sequence[str], env: Environment) -> ExitStatus | int:
    """The main program without error handling: its input, output and cache all come from env."""
    argv = list(argv)
    if argv[:1] == ["--version"]:
        env.stdout.write(f"smtprun {__version__}\n")
        return ExitStatus.OK
    if argv and argv[0] not in (*COMMANDS, "-h", "--help"):
        import os

        if not os.path.exists(argv[0]):  # a plan file is run as it is named, however close to a command
            import difflib

            close = difflib.get_close_matches(argv[0], COMMANDS, n=1, cutoff=0.75)
            if close:
                raise UsageError(f"smtprun: no command or plan file {argv[0]!r}; did you mean '{close[0]}'?")
        argv.insert(0, "run")  # `smtprun PLAN` means `smtprun run PLAN`
    if not argv or argv[0] in ("-h", "--help"):  # the main form first: `smtprun PLAN` and its options
        from runner.cli.run import print_help

        console = Console(env.stdout, env.stderr, env.colour)
        print_help(console.out if argv else console.err)
        return ExitStatus.OK if argv else ExitStatus.USAGE
    return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:], env)  # type: ignore[no-any-return]


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    *,
    env: Environment | None = None,
) -> int:
    """Run the command line and return its exit status. out and err stand in for the standard
    streams; env, when given, for everything the process gives the program (out and err unused)."""
    env = env or Environment.from_os(stdout=out, stderr=err)
    console = Console(env.stdout, env.stderr, env.colour)
    try:
        return int(program(sys.argv[1:] if argv is None else argv, env))
    except PlanError as exc:
        console.error(str(exc))
        n = len(exc.problems)
        console.error(f"smtprun: {n} problem{'s' * (n != 1)} found; nothing was sent")
        return int(ExitStatus.USAGE)
    except UsageError as exc:
        message = str(exc)
        console.error(message if message.startswith("smtprun") else f"smtprun: {message}")
        return int(ExitStatus.USAGE)
    except SmtprunError as exc:
        console.error(f"smtprun: {exc}")
        return int(ExitStatus.ERROR)
    except KeyboardInterrupt:
        console.error("smtprun: interrupted")
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:  # `smtprun validate ... | head`: the reader left; say nothing more
        import os

        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), env.stdout.fileno())
        return int(ExitStatus.OUTPUT_CLOSED)
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
