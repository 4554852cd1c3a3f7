"""runner/net/transport.py: the Transport the engine is given, real or scripted.

The engine's tests run cases over tests/support/peer.py's scripted connection; they say something
about the real one only as long as both provide the whole of the Transport protocol.
"""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from runner.net.transport import Connection, Transport, _Wire, closed_handle, quiet_closed_transports
from tests.support.engine import members
from tests.support.peer import ScriptedConnection


def test_the_real_connection_and_the_scripted_one_are_both_transports():
    for conn in (Connection(_Wire(), "192.0.2.1:25"), ScriptedConnection([], "192.0.2.1:25")):
        assert not [n for n in members(Transport) if not hasattr(type(conn), n) and n not in vars(conn)]


def uvloop_closed_transport_error() -> RuntimeError:
    """What the installed uvloop raises for a write on a transport it has closed (a pipe's: no network here)."""
    uvloop = pytest.importorskip("uvloop")

    async def write_after_close() -> RuntimeError:
        read_fd, write_fd = os.pipe()
        try:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(write_fd, "wb"))
            transport.close()
            await asyncio.sleep(0)
            with pytest.raises(RuntimeError) as raised:
                transport.write(b"x")
            return raised.value
        finally:
            os.close(read_fd)

    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(write_after_close())
    finally:
        loop.close()


def test_uvloops_error_for_a_closed_transport_is_told_apart_from_other_runtime_errors():
    assert closed_handle(uvloop_closed_transport_error())
    assert not closed_handle(RuntimeError("Event loop is closed"))
    assert not closed_handle(OSError("the handler is closed"))
    assert not closed_handle(None)


def test_the_loops_exception_handler_is_quiet_about_a_closed_transport_only(caplog):
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            quiet_closed_transports(loop, {"message": "callback failed", "exception": uvloop_closed_transport_error()})
            assert not caplog.records
            quiet_closed_transports(loop, {"message": "callback failed", "exception": RuntimeError("a defect")})
    finally:
        loop.close()
    assert [r.getMessage() for r in caplog.records] == ["callback failed"]
