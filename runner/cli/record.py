"""`smtprun record HOST[:PORT]`: an interactive SMTP session, written down as a plan (runner.tools.record)."""

from __future__ import annotations

from runner.cli.common import ArgumentParser
from runner.environment import Environment

__all__ = ["HELP", "main"]

HELP = "an interactive SMTP session, written down as a plan"


def main(argv: list[str], env: Environment) -> int:
    from runner.tools import record

    parser = ArgumentParser(prog="smtprun record", description=HELP)
    record.add_arguments(parser)
    return record.run(parser.parse_args(argv), env.stdout, env.stderr, env.stdin)
