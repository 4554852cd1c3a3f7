"""Command-line argument types (argparse `type=` functions) shared by the command line and the pytest plugin.

Each turns the parser's ValueError into argparse's own error, so a bad value is a one-line usage error.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from runner.errors import UsageError
from runner.net.address import parse_hostport, parse_port, parse_source

__all__ = ["ArgumentParser", "count", "count_or_auto", "host_port", "name_value", "nameserver", "seconds",
           "secret_value", "shard", "source_address", "tcp_port", "whole_number"]


class ArgumentParser(argparse.ArgumentParser):
    """A parser whose errors are UsageErrors, for each command to report in its own way."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def name_value(text: str) -> tuple[str, str]:
    """NAME=VALUE, as --var and --secret take it."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def secret_value(text: str) -> tuple[str, str]:
    """NAME=VALUE, as --secret takes it: a mistake is named without showing what was given."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError("expected NAME=VALUE (what was given is a secret: not shown)")
    return name, value


def nameserver(text: str) -> str:
    from runner.net.dns import parse_nameserver

    try:
        parse_nameserver(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


MIN_SECONDS = 0.001  # a wait shorter than a millisecond is no wait at all (1e-320 is a typo, not a timeout)
MAX_SECONDS = 86400


def seconds(text: str) -> float:
    """A timeout in seconds, from a millisecond to a day; NaN and infinity are not timeouts."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not MIN_SECONDS <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be between {MIN_SECONDS:g} and {MAX_SECONDS} seconds: {text}")
    return value


def host_port(text: str) -> tuple[str, int | None]:
    """HOST, HOST:PORT, an IPv6 literal, [IPv6] or [IPv6]:PORT."""
    try:
        return parse_hostport(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def source_address(text: str) -> str:
    """--source: an IPv4 or IPv6 address of this machine to connect from, no port."""
    try:
        return parse_source(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def tcp_port(text: str) -> int:
    try:
        return parse_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def whole_number(most: int) -> Callable[[str], int]:
    """An argument type: a whole number from 1 to `most`."""
    def parse(text: str) -> int:
        if not text.isdigit() or not 0 < int(text) <= most:
            raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {most}, got {text!r}")
        return int(text)
    return parse


count = whole_number(10_000_000)


def count_or_auto(text: str) -> int | None:
    """An argument type: `auto` (None: smtprun decides) or a whole number from 1."""
    if text == "auto":
        return None
    try:
        return count(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected auto or a whole number from 1, got {text!r}") from None


def shard(text: str) -> tuple[int, int]:
    """K/N, as --shard takes it."""
    from runner.plan.targets import parse_shard

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
