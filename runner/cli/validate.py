"""`smtprun validate PLAN ...`: check plans without sending anything."""

from __future__ import annotations

import argparse

from runner.cli.common import ArgumentParser, add_variable_arguments, read_plans
from runner.console import Console
from runner.environment import Environment
from runner.status import ExitStatus

__all__ = ["HELP", "main"]

HELP = "check plans without sending anything"


def add_arguments(val: argparse.ArgumentParser) -> None:
    val.add_argument("plans", nargs="+", metavar="PLAN", help="plan files (YAML), or folders of them")
    add_variable_arguments(val, "a variable the plan expects from the command line (repeatable)",
                           "a secret variable (repeatable)")


def main(argv: list[str], env: Environment) -> int:
    parser = ArgumentParser(prog="smtprun validate", description=HELP)
    add_arguments(parser)
    args = parser.parse_args(argv)
    console = Console(env.stdout, env.stderr, env.colour)
    plans = read_plans(args.plans, args, env, console)
    for plan in plans:
        console.out.write(f"{plan.file}: ok ({len(plan.cases)} case{'s' * (len(plan.cases) != 1)})\n")
    return ExitStatus.OK
