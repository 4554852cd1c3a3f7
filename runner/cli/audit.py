"""`smtprun audit DOMAIN`: a domain's mail set-up checked with nothing to write — the library plan plans/audit.yaml
(every MX: banner, EHLO, STARTTLS with a valid certificate; the domain's SPF, DMARC, MTA-STS and TLS-RPT) run as
`smtprun run` would run it, so anything the audit does a plan can do, and an admin can copy and change it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from runner.arguments import nameserver, seconds, tcp_port
from runner.cli.common import ArgumentParser
from runner.environment import Environment
from runner.errors import UsageError
from runner.net.address import ip_version

__all__ = ["HELP", "PLAN_NAME", "main", "plan_path"]

HELP = "audit a mail domain: its MX hosts (banner, EHLO, STARTTLS) and its SPF, DMARC, MTA-STS and TLS-RPT"
PLAN_NAME = "audit.yaml"
_REPO_COPY = Path(__file__).resolve().parents[2] / "plans" / PLAN_NAME


def plan_path() -> str:
    """The audit plan as shipped: inside the installed package, or in the source checkout's plans/."""
    try:
        shipped = resources.files("runner.library").joinpath(PLAN_NAME)
        if shipped.is_file():
            return str(shipped)
    except ModuleNotFoundError:
        pass
    return str(_REPO_COPY)


def _as_given(check: Callable[[str], Any]) -> Callable[[str], str]:
    """An argument type that checks the value as `smtprun run` will, and passes it on as written."""
    def checked(text: str) -> str:
        check(text)
        return text

    checked.__name__ = check.__name__  # argparse names the type in its message
    return checked


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("domain", metavar="DOMAIN", help="the mail domain to audit (its MX hosts are looked up)")
    parser.add_argument("--nameserver", action="append", type=_as_given(nameserver), default=[], metavar="IP[:PORT]",
                        help="DNS server for every lookup, MX hosts and records alike (repeatable; default: the "
                             "system's): audits internal domains and split DNS")
    parser.add_argument("--cafile", metavar="FILE", help="CA certificates the MX certificates are verified with "
                        "(default: the system's store)")
    parser.add_argument("--port", type=_as_given(tcp_port), help="connect to the MX hosts on this port, not 25")
    parser.add_argument("--timeout", type=_as_given(seconds), metavar="S", help="seconds to wait for each reply")
    parser.add_argument("--mta-sts-port", type=_as_given(tcp_port), metavar="PORT",
                        help="fetch the MTA-STS policy from this port of mta-sts.DOMAIN, not 443 (a test or staging "
                             "policy server)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON ('-' for stdout)")
    parser.add_argument("--report-dir", default="reports", metavar="DIR", help="where the HTML report goes")
    parser.add_argument("--no-report", action="store_true", help="write no HTML report")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the live transcript")


def run_arguments(args: argparse.Namespace) -> list[str]:
    """`smtprun run`'s arguments for this audit."""
    argv = [plan_path(), "--var", f"domain={args.domain}", "--var", f"cafile={args.cafile or ''}",
            "--report-dir", args.report_dir]
    for server in args.nameserver:
        argv += ["--nameserver", server]
    if args.mta_sts_port is not None:
        argv += ["--var", f"mta_sts_port={args.mta_sts_port}"]
    for option in ("port", "timeout", "json"):
        if getattr(args, option) is not None:
            argv += [f"--{option}", getattr(args, option)]
    argv += [flag for flag, on in (("--no-report", args.no_report), ("--verbose", args.verbose)) if on]
    return argv


def main(argv: list[str], env: Environment) -> int:
    parser = ArgumentParser(prog="smtprun audit", description=HELP)
    add_arguments(parser)
    args = parser.parse_args(argv)
    domain = args.domain.strip().rstrip(".")
    if not domain or ip_version(domain.strip("[]")) or "{" in domain or "/" in domain:
        raise UsageError(f"smtprun audit: {args.domain!r} is not a mail domain (give a name such as example.com)")
    args.domain = domain
    from runner.cli import run

    return run.main(run_arguments(args), env)
