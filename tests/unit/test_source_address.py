"""target.source / --source as written: the address a user may give, the errors the rest earn, and what
the engine does with it (the connector is given the address only when there is one)."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from runner.net.address import parse_source
from runner.plan.build import build_plan
from runner.plan.load import load_text
from runner.plan.schema import validate
from runner.plan.scope import Scope
from runner.results import FAILED, PASSED
from runner.run.case import CaseRun, run_case
from tests.support.cli import run, write_plan
from tests.support.peer import Expect, Say, ScriptedServer
from tests.support.validation import only_problem


@pytest.mark.parametrize(("text", "address"), [
    ("127.0.0.2", "127.0.0.2"), ("::1", "::1"), ("[::1]", "::1"), (" 192.0.2.7 ", "192.0.2.7"),
    ("2001:DB8::0:1", "2001:db8::1"), ("fe80::1%lo", "fe80::1%lo"),
])
def test_source_addresses_accepted(text: str, address: str) -> None:
    assert parse_source(text) == address


@pytest.mark.parametrize(("text", "message"), [
    ("127.0.0.2:2525", "a source address takes no port: '127.0.0.2:2525' (the system picks the port)"),
    ("[::1]:2525", "a source address takes no port: '[::1]:2525' (the system picks the port)"),
    ("mail.example.com", "not an IPv4 or IPv6 address: 'mail.example.com'"),
    ("127.0.0.256", "not an IPv4 or IPv6 address: '127.0.0.256'"),
    ("[::1", "not an IPv4 or IPv6 address: '[::1'"),
    ("", "an empty source address"),
    ("0.0.0.0", "'0.0.0.0' is the unspecified address, not one a connection can come from "
                "(give an address of this machine, or no source for the system's choice)"),
    ("[::]", "'[::]' is the unspecified address, not one a connection can come from "
             "(give an address of this machine, or no source for the system's choice)"),
    ("224.0.0.1", "'224.0.0.1' is a multicast address, not one a connection can come from "
                  "(give an address of this machine, or no source for the system's choice)"),
    ("ff02::1", "'ff02::1' is a multicast address, not one a connection can come from "
                "(give an address of this machine, or no source for the system's choice)"),
    ("255.255.255.255", "'255.255.255.255' is the broadcast address, not one a connection can come from "
                        "(give an address of this machine, or no source for the system's choice)"),
])
def test_source_addresses_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_source(text)
    assert str(exc.value) == message


def test_a_source_that_is_no_address_is_a_plan_error(tmp_path: Path) -> None:
    text = "target:\n  host: 127.0.0.1\n  source: mail.example.com\nsteps:\n  - expect: 220\n"
    assert only_problem(tmp_path, text) == ("3:11", "target.source: not an IPv4 or IPv6 address: 'mail.example.com'")
    text = "target:\n  host: 127.0.0.1\n  source: 127.0.0.2:40000\nsteps:\n  - expect: 220\n"
    assert only_problem(tmp_path, text)[1].startswith("target.source: a source address takes no port")


def test_source_option_errors_are_usage_errors(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, "target: {host: 127.0.0.1}\nsteps:\n  - expect: 220\n")
    code, _out, err = run(plan, "--no-report", "--source", "example.com")
    assert code == 2 and "argument --source: not an IPv4 or IPv6 address: 'example.com'" in err
    code, _out, err = run(plan, "--no-report", "--source", "127.0.0.2", "--host", "[::1]:25")
    assert code == 2 and "--source 127.0.0.2 is an IPv4 address: it cannot reach --host ::1 (IPv6)" in err
    code, _out, err = run(plan, "--no-report", "--source", "::1", "-4")
    assert code == 2 and "--source ::1 is an IPv6 address: it cannot go with --ipv4" in err
    code, out, err = run(plan, "--no-report", "--source", "::1", "--embedded")
    assert (code, out) == (2, "")
    assert "--source ::1 is an IPv6 address: it cannot reach the embedded server (IPv4, on 127.0.0.1)" in err


def _plan(target: str):  # type: ignore[no-untyped-def]
    loaded = load_text(f"target: {{{target}}}\n" + textwrap.dedent("""\
        steps:
          - expect: 220
          - send: QUIT
            expect: 221
        """))
    assert not validate(loaded)
    return build_plan(loaded)


def _session(plan, server):  # type: ignore[no-untyped-def]
    return asyncio.run(run_case(CaseRun(plan, plan.cases[0], plan.target, Scope.for_plan(plan),
                                        connect=server.connect)))


def _greeting() -> list:
    return [Say(b"220 mx.peer.test ESMTP\r\n"), Expect(b"QUIT\r\n"), Say(b"221 bye\r\n")]


def test_the_connector_gets_the_source_and_the_transcript_names_it() -> None:
    server = ScriptedServer(_greeting())
    result = _session(_plan("host: 192.0.2.25, source: 192.0.2.99"), server)
    assert result.status == PASSED and server.sources == ["192.0.2.99"]
    assert result.source == "192.0.2.99" and result.to_dict()["source"] == "192.0.2.99"
    assert "connected from 192.0.2.99 to 192.0.2.25:25" in [e.data.decode() for e in result.transcript]


def test_without_a_source_nothing_changes() -> None:
    server = ScriptedServer(_greeting())
    result = _session(_plan("host: 192.0.2.25"), server)
    assert result.status == PASSED and server.sources == [None] and result.source is None
    assert "connected to 192.0.2.25:25" in [e.data.decode() for e in result.transcript]


def test_a_source_of_the_other_family_fails_before_connecting() -> None:
    server = ScriptedServer(_greeting())
    result = _session(_plan("host: '2001:db8::25', source: 192.0.2.99"), server)
    assert result.status == FAILED and server.attempts == []
    assert result.reason.endswith("cannot connect to [2001:db8::25]:25 from source address 192.0.2.99: "
                                  "an IPv4 source cannot reach an IPv6 address")


def test_a_templated_source_is_rendered_per_case() -> None:
    loaded = load_text(textwrap.dedent("""\
        target: {host: 192.0.2.25, source: "{{ src }}"}
        matrix: {src: [192.0.2.98, not-an-address]}
        steps:
          - expect: 220
          - send: QUIT
            expect: 221
        """))
    assert not validate(loaded)
    plan = build_plan(loaded)
    server = ScriptedServer(_greeting())
    scope = Scope.for_plan(plan)
    first = asyncio.run(run_case(CaseRun(plan, plan.cases[0], plan.target, scope, connect=server.connect)))
    second = asyncio.run(run_case(CaseRun(plan, plan.cases[1], plan.target, scope, connect=server.connect)))
    assert first.status == PASSED and server.sources == ["192.0.2.98"]
    assert second.status == FAILED and "target.source: not an IPv4 or IPv6 address: 'not-an-address'" in second.reason
