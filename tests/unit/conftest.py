"""Unit tests need no network: connecting, binding, sending a datagram or resolving a name fails the test.

Tests that need a socket belong in tests/integration/. Subprocesses are allowed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.network import MOVE, forbid_network


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every unit test runs under the guard; a test of the guard itself clears the list it yields."""
    attempts = forbid_network(monkeypatch)
    yield attempts
    if attempts:
        pytest.fail(f"network used in a unit test: {', '.join(attempts)}; {MOVE}", pytrace=False)
