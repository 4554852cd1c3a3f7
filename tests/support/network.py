"""A guard against network use: connecting, binding, sending a datagram or resolving a name raises.

tests/unit/conftest.py installs it for every unit test. The guard raises at the call, so the
traceback shows where; and because code under test may turn an exception into a result (a failed
case, an error message), every attempt is also recorded, and the fixture fails the test at teardown
if the list is not empty, however the exception was handled. Both event loops a run may use are guarded:
asyncio's and uvloop's (runner/run/execute.py picks uvloop where it is installed). Subprocesses are not
guarded.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
from collections.abc import Callable
from typing import NoReturn

import pytest

MOVE = "tests/unit/ needs no network: move this test to tests/integration/"


class NetworkInUnitTest(AssertionError):
    """Not an OSError, so no `except OSError` in the code under test takes it for a refused connection."""


SOCKET_METHODS = ("connect", "connect_ex", "bind", "sendto")
SOCKET_FUNCTIONS = ("create_connection", "create_server", "getaddrinfo", "gethostbyname", "gethostbyname_ex")
LOOP_METHODS = ("create_connection", "create_datagram_endpoint", "create_server", "create_unix_connection",
                "getaddrinfo", "sock_connect")
CARES_METHODS = ("query", "search", "getaddrinfo", "gethostbyaddr", "getnameinfo")  # c-ares' sockets are C's


def forbid_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every way of reaching the network raise NetworkInUnitTest; the list returned collects attempts."""
    attempts: list[str] = []

    def refuse(what: str) -> Callable[..., NoReturn]:
        def blocked(*args: object, **kwargs: object) -> NoReturn:
            attempts.append(f"{what}{args[1:] if what.startswith(('socket.socket', 'loop', 'uvloop')) else args}")
            raise NetworkInUnitTest(f"{what} called: {MOVE}")
        return blocked

    for name in SOCKET_METHODS:
        monkeypatch.setattr(socket.socket, name, refuse(f"socket.socket.{name}"))
    for name in SOCKET_FUNCTIONS:
        monkeypatch.setattr(socket, name, refuse(f"socket.{name}"))
    for name in LOOP_METHODS:
        monkeypatch.setattr(asyncio.SelectorEventLoop, name, refuse(f"loop.{name}"))
    for module, owner, names in (("uvloop", "Loop", LOOP_METHODS), ("pycares", "Channel", CARES_METHODS)):
        try:
            cls = getattr(importlib.import_module(module), owner)
        except ImportError:
            continue
        for name in names:
            monkeypatch.setattr(cls, name, refuse(f"{module}.{owner}.{name}"))
    return attempts
