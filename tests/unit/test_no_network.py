"""The unit conftest's guard: a unit test that reaches for the network fails, loudly, even if the error is caught."""

from __future__ import annotations

import asyncio
import socket

import pytest

from runner.net.dns import DnsError, ResolverConfig, resolve_mx
from tests.support.network import NetworkInUnitTest


def test_a_tcp_connection_is_refused_with_the_rule(no_network):
    with pytest.raises(NetworkInUnitTest, match="tests/unit/ needs no network"):
        socket.create_connection(("127.0.0.1", 25), timeout=1)
    assert no_network == ["socket.create_connection(('127.0.0.1', 25),)"]
    no_network.clear()  # seen; do not fail this test at teardown


def test_an_asyncio_connection_is_refused(no_network):
    async def connect() -> None:
        await asyncio.open_connection("127.0.0.1", 25)

    with pytest.raises(NetworkInUnitTest):
        asyncio.run(connect())
    assert [a.split("(")[0] for a in no_network] == ["loop.create_connection"]
    no_network.clear()


def test_a_dns_query_is_caught_though_c_ares_makes_its_own_sockets(no_network):
    """c-ares opens its sockets in C, out of the socket module's reach: the guard stops the query itself (the
    resolver turns what it raises into the lookup's failure; the record shows the query all the same)."""
    config = ResolverConfig(nameservers=(("127.0.0.1", 53),), timeout=0.2)
    with pytest.raises(DnsError, match=r"^internal error in the DNS lookup of example.test MX: NetworkInUnitTest"):
        asyncio.run(resolve_mx("example.test", config))
    assert no_network and all(a.startswith("pycares.Channel.query") for a in no_network), no_network
    no_network.clear()


def test_a_connection_on_uvloop_is_refused(no_network):
    """A run uses uvloop where it is installed (runner/run/execute.py): its connections are guarded too."""
    uvloop = pytest.importorskip("uvloop")

    async def connect() -> None:
        await asyncio.open_connection("127.0.0.1", 25)

    loop = uvloop.new_event_loop()
    try:
        with pytest.raises(NetworkInUnitTest):
            loop.run_until_complete(connect())
    finally:
        loop.close()
    assert [a.split("(")[0] for a in no_network] == ["uvloop.Loop.create_connection"]
    no_network.clear()
