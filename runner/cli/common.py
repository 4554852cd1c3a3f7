"""What the command line's commands share: the parser, the target and variable options, reading plans."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from runner.arguments import (
    ArgumentParser,
    host_port,
    name_value,
    nameserver,
    seconds,
    secret_value,
    source_address,
    tcp_port,
)
from runner.console import Console
from runner.environment import Environment
from runner.errors import UsageError

__all__ = ["ArgumentParser", "add_target_arguments", "add_variable_arguments", "check_profile", "read_plans"]


def add_target_arguments(run: argparse.ArgumentParser) -> None:
    """Where and how long `run` connects, instead of what the plans say."""
    run.add_argument("--host", type=host_port, metavar="HOST[:PORT]",
                     help="connect here instead of the plan's target (HOST, HOST:PORT, [IPv6]:PORT)")
    run.add_argument("--port", type=tcp_port, help="connect to this port instead of the plan's")
    run.add_argument("--source", type=source_address, metavar="ADDRESS",
                     help="connect from this local IP address (IPv4 or IPv6, no port) instead of the plan's "
                          "target.source or the system's choice")
    run.add_argument("--timeout", type=seconds, metavar="S",
                     help="seconds to wait for each reply, instead of the plans' target.timeout "
                          "(a case's or step's own timeout still applies)")
    run.add_argument("--session-timeout", type=seconds, metavar="S", help="seconds a whole case may take")
    run.add_argument("--nameserver", action="append", type=nameserver, default=[], metavar="IP[:PORT]",
                     help="DNS server for MX lookups and DNS checks (repeatable; default: the plan's, or the system)")
    family = run.add_mutually_exclusive_group()
    family.add_argument("-4", "--ipv4", action="store_const", const=("ipv4",), dest="families",
                        help="connect to IPv4 addresses of MX hosts only")
    family.add_argument("-6", "--ipv6", action="store_const", const=("ipv6",), dest="families",
                        help="connect to IPv6 addresses of MX hosts only")


def add_variable_arguments(parser: argparse.ArgumentParser, var_help: str, secret_help: str) -> None:
    parser.add_argument("--var", action="append", type=name_value, default=[], metavar="NAME=VALUE", help=var_help)
    parser.add_argument("--secret", action="append", type=secret_value, default=[], metavar="NAME=VALUE",
                        help=secret_help)


def read_plans(paths: Sequence[str], args: argparse.Namespace, env: Environment, console: Console,
                columns: dict[str, str] | None = None) -> list:
    """Every plan, validated, with --var and --secret (and a --targets CSV's columns) over their variables.
    What validation warns of is printed, compiler-style, before anything else."""
    from runner.run.request import read_request_plans

    return read_request_plans(paths, args.var, args.secret, env.cache_dir, columns, console.error)


def check_profile(name: str) -> None:
    from runner.tools.profiles import PROFILES

    if name not in PROFILES:
        raise UsageError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
