"""At most a few sessions to one server at once: a plan of nine cases does not trip a server's limit on
connections per client (Courier closes a sixth one from the same address without a word)."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.cli import run, write_plan
from tests.support.faults import BANNER, Concurrency, FaultServer, Peer

NINE_CASES = "target: {{host: 127.0.0.1, port: {port}, timeout: 10}}\ncases:\n" + "".join(
    f"  - name: case {n}\n    steps:\n      - expect: 220\n      - send: QUIT\n        expect: 221\n"
    for n in range(1, 10))


def held(count: Concurrency, limit: int | None = None):
    """Each session holds its banner a moment; past `limit` connections at once, a new one is closed at once."""
    def behaviour(peer: Peer) -> None:
        count.enter(peer.sock)
        try:
            if limit is not None and count.now > limit:
                return  # MAXPERIP: closed without a reply
            peer.pause(0.3)
            peer.send(BANNER)
            peer.read_line()
            peer.send(b"221 bye\r\n")
        finally:
            count.leave(peer.sock)
    return behaviour


@pytest.mark.parametrize(("args", "most"), [((), 4), (("--per-host", "2"), 2), (("--per-host", "9"), 9)])
def test_a_run_opens_at_most_per_host_sessions_to_one_server(tmp_path, args, most):
    count = Concurrency()
    with FaultServer(held(count)) as server:
        code, out, err = run(write_plan(tmp_path, NINE_CASES.format(port=server.port)), "--no-report", *args)
    assert code == 0, out + err
    assert count.peak == most


def test_a_server_closing_at_the_banner_while_others_are_open_is_said_to_limit_clients(tmp_path):
    count = Concurrency()
    with FaultServer(held(count, limit=5)) as server:
        code, out, err = run(write_plan(tmp_path, NINE_CASES.format(port=server.port)), "--no-report",
                             "--per-host", "9", "--json", str(tmp_path / "r.json"))
    assert code == 1, out + err
    reasons = [c["reason"] for c in json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"]
               if c["status"] == "failed"]
    assert reasons
    for reason in reasons:  # how many others smtprun had open depends on which connects it had finished counting
        assert re.search(r"\): connection closed by the server before its banner, while [1-8] other connections? of "
                         r"this run to it (was|were) open: the server may limit connections per client \(--per-host "
                         r"lowers how many smtprun opens at once\)$", reason), reason
