"""runner/net/transport.py: the Transport the engine is given, real or scripted.

The engine's tests run cases over tests/support/peer.py's scripted connection; they say something
about the real one only as long as both provide the whole of the Transport protocol.
"""

from __future__ import annotations

from runner.net.transport import Connection, Transport, _Wire
from tests.support.engine import members
from tests.support.peer import ScriptedConnection


def test_the_real_connection_and_the_scripted_one_are_both_transports():
    for conn in (Connection(_Wire(), "192.0.2.1:25"), ScriptedConnection([], "192.0.2.1:25")):
        assert not [n for n in members(Transport) if not hasattr(type(conn), n) and n not in vars(conn)]
