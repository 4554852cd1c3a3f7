"""Reading a check's output as a monitoring system does, and a loopback port where nothing listens."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass

# Monitoring Plugins Development Guidelines, "Performance data": 'label'=value[UOM];[warn];[crit];[min];[max]
_PERF = re.compile(r"('(?:[^']|'')+'|[^=\s']+)=([-0-9.]+)([a-zA-Z%]*)((?:;[^;\s]*){0,4})(?:\s|$)")


@dataclass(frozen=True)
class Perf:
    value: float
    unit: str
    warning: str
    critical: str
    minimum: str
    maximum: str


@dataclass(frozen=True)
class CheckOutput:
    status: str  # the word after the service name: OK, WARNING, CRITICAL, UNKNOWN
    text: str  # the status line before `|`
    perf: dict[str, Perf]
    long: list[str]  # the lines after the first


def parse_check(out: str) -> CheckOutput:
    first, *long = out.splitlines()
    text, _, perf_text = first.partition("|")
    match = re.match(r"SMTP (OK|WARNING|CRITICAL|UNKNOWN) - ", text)
    assert match, f"not a plugin status line: {first!r}"
    perf = {}
    for m in _PERF.finditer(perf_text.strip()):
        fields = (m.group(4)[1:].split(";") if m.group(4) else []) + [""] * 4
        perf[m.group(1).strip("'")] = Perf(float(m.group(2)), m.group(3), *fields[:4])
    assert len(perf) == len(perf_text.split()), f"unparsed performance data in {perf_text!r}"
    return CheckOutput(match.group(1), text.strip(), perf, long)


@contextlib.contextmanager
def dead_port() -> Iterator[int]:
    """A loopback port bound by this process and not listening: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
