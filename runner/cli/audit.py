"""`smtprun audit DOMAIN`: a domain's mail set-up checked with nothing to write — the library plan plans/audit.yaml
(every MX: banner, EHLO, STARTTLS with a valid certificate; the domain's SPF, DMARC, MTA-STS, TLS-RPT, DKIM keys,
blocklist listings of the MX addresses and DNSSEC) run as
`smtprun run` would run it, so anything the audit does a plan can do, and an admin can copy and change it."""

from __future__ import annotations

import argparse
import re
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

HELP = ("audit a mail domain: its MX hosts (banner, EHLO, STARTTLS) and its SPF, DMARC, MTA-STS, TLS-RPT, DKIM keys, "
        "blocklists and DNSSEC")
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


# a DKIM selector (RFC 6376 §3.1) or a blocklist's zone (RFC 1035 §2.3.1): dot-separated labels, each at most 63
# octets (RFC 1035 §2.3.4); `_` allowed, as deployed selectors and zones use it
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_NAME_LENGTH = 253  # RFC 1035 §2.3.4: 255 octets in wire form


def dns_name(text: str) -> str:
    """A selector or a zone as given on the command line, without a trailing dot."""
    name = text.strip().rstrip(".")
    if len(name) > _NAME_LENGTH or not _NAME.fullmatch(name):
        raise argparse.ArgumentTypeError(f"{text!r} is not a DNS name (labels of letters, digits, '-' and '_', "
                                         "separated by dots)")
    return name


def _is_domain(name: str) -> bool:
    """A domain name as DNS takes it: an internationalised one in its IDNA form (RFC 5890), then labels as above."""
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return len(ascii_name) <= _NAME_LENGTH and _NAME.fullmatch(ascii_name) is not None


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
    parser.add_argument("--dkim-selector", action="append", type=dns_name, default=[], metavar="NAME",
                        help="a DKIM selector whose key at NAME._domainkey.DOMAIN is checked (repeatable; "
                             "selectors cannot be listed from DNS, so none named is a warning)")
    parser.add_argument("--dnsbl", action="append", type=dns_name, default=[], metavar="ZONE",
                        help="a DNS blocklist zone each MX address is looked up in, e.g. zen.spamhaus.org "
                             "(repeatable; none named is a warning)")
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
    if args.dkim_selector:
        argv += ["--var", "dkim_selectors=" + " ".join(dict.fromkeys(args.dkim_selector))]
    if args.dnsbl:
        argv += ["--var", "dnsbl_zones=" + " ".join(dict.fromkeys(args.dnsbl))]
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
    if not domain or ip_version(domain.strip("[]")) or not _is_domain(domain):
        raise UsageError(f"smtprun audit: {args.domain!r} is not a mail domain (give a name such as example.com)")
    args.domain = domain
    from runner.cli import run

    return run.main(run_arguments(args), env)
