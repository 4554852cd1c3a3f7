"""target.unix as written: refused beside a host, a port, an MX domain or a source address, and with tls: implicit,
each with the line and the reason; accepted alone as the plan's whole target."""

from __future__ import annotations

import pytest

from runner.plan import read_plan
from tests.support.validation import only_problem, write


@pytest.mark.parametrize(("beside", "line", "message"), [
    ("host: 127.0.0.1", 3, "target.unix and target.host: a UNIX-domain socket is the whole address (no host, "
                           "port, MX domain or source address); give one of them"),
    ("port: 2525", 3, "target.unix and target.port: a UNIX-domain socket is the whole address (no host, "
                      "port, MX domain or source address); give one of them"),
    ("mx: example.org", 3, "target.unix and target.mx: a UNIX-domain socket is the whole address (no host, "
                           "port, MX domain or source address); give one of them"),
    ("tls: implicit", 3, "target.unix with tls: implicit is not supported yet: use a starttls: step"),
])
def test_refused_beside(tmp_path, beside: str, line: int, message: str) -> None:
    plan = f"target:\n  unix: /run/smtp.sock\n  {beside}\nsteps:\n  - send: QUIT\n"
    where, text = only_problem(tmp_path, plan)
    assert where.split(":")[0] == str(line)
    assert text == message


def test_alone_it_is_the_target(tmp_path) -> None:
    plan = read_plan(write(tmp_path, "target: {unix: /run/smtp.sock}\nsteps:\n  - send: QUIT\n"))
    assert plan.target.unix == "/run/smtp.sock"
    assert str(plan.target) == "unix:/run/smtp.sock"


def test_a_host_given_on_the_command_line_replaces_the_socket(tmp_path) -> None:
    from runner.plan.targets import FleetTarget

    plan = read_plan(write(tmp_path, "target: {unix: /run/smtp.sock}\nsteps:\n  - send: QUIT\n"))
    target = FleetTarget("mx.example.org:2525", 1, host="mx.example.org", port=2525).apply(plan.target)
    assert (target.unix, str(target)) == (None, "mx.example.org:2525")
