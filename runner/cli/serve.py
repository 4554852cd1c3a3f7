"""`smtprun serve`: the embedded SMTP server, on loopback unless told otherwise."""

from __future__ import annotations

import argparse

from runner.arguments import tcp_port
from runner.cli.common import ArgumentParser, check_profile
from runner.console import Console
from runner.environment import Environment
from runner.errors import UsageError
from runner.status import ExitStatus

__all__ = ["HELP", "main"]

HELP = "run the embedded SMTP server"


def add_arguments(srv: argparse.ArgumentParser) -> None:
    srv.add_argument("--host", default="127.0.0.1",
                     help="the address to listen on (default 127.0.0.1, loopback only)")
    srv.add_argument("--port", type=tcp_port, default=2525, help="the port to listen on (default 2525)")
    srv.add_argument("--profile", default="default", help="answer like: default, exchange, postfix, strict")
    srv.add_argument("--tls-cert", metavar="PEM", help="certificate for STARTTLS (or implicit TLS)")
    srv.add_argument("--tls-key", metavar="PEM", help="private key for --tls-cert")
    srv.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (port 465 style)")
    srv.add_argument("--auth-user", help="accept AUTH PLAIN/LOGIN/CRAM-MD5 for this user")
    srv.add_argument("--auth-password", help="the password for --auth-user")


def main(argv: list[str], env: Environment) -> int:
    parser = ArgumentParser(prog="smtprun serve", description=HELP)
    add_arguments(parser)
    args = parser.parse_args(argv)
    console = Console(env.stdout, env.stderr, env.colour)
    from runner.tools.server import EmbeddedServer, ServerAuth, run_until_interrupted, tls_from_files

    check_profile(args.profile)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if bool(args.auth_user) != bool(args.auth_password):
        raise UsageError("--auth-user and --auth-password go together")
    if args.implicit_tls and not args.tls_cert:
        raise UsageError("--implicit-tls needs --tls-cert and --tls-key")
    tls = tls_from_files(args.tls_cert, args.tls_key, args.implicit_tls)
    # Without any TLS, AUTH could never be offered; this is a test server, so allow it then.
    auth = ServerAuth(args.auth_user, args.auth_password, require_tls=tls is not None) if args.auth_user else None
    run_until_interrupted(EmbeddedServer(args.host, args.port, args.profile, tls=tls, auth=auth), console.out)
    return ExitStatus.OK
