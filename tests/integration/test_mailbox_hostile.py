"""Mailbox servers that misbehave: every wait still ends within `within:` and a moment, with a reason."""

from __future__ import annotations

import time

import pytest

from tests.support.cli import run, write_plan
from tests.support.faults import FaultServer, Peer

WITHIN = 2.0
STALLED = "IMAP server 127.0.0.1:{port} did not let smtprun log in and search within 2s (silent, or too slow)"


def silent(peer: Peer) -> None:
    peer.hold()


def drip(peer: Peer) -> None:
    for byte in b"* OK [CAPABILITY IMAP4rev1] dripping" * 100:
        peer.send(bytes([byte]))
        if not peer.pause(0.2):
            return


def endless_literal(peer: Peer) -> None:
    peer.send(b"* OK ready\r\n")
    line = peer.read_line() or b"x"
    peer.send(b"* CAPABILITY {1000000000}\r\n")  # announced, then never ending
    del line
    while peer.pause(0.01):
        peer.send(b"x" * 65536)


def slow_literal(peer: Peer) -> None:
    """A literal small enough to be read, sent a few bytes a second: only the deadline ends it."""
    peer.send(b"* OK ready\r\n")
    peer.read_line()
    peer.send(b"* CAPABILITY {100000}\r\n")
    while peer.pause(0.1):
        peer.send(b"IMAP4rev1 ")


def endless_lines(peer: Peer) -> None:
    peer.send(b"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n")
    peer.read_line()
    line = b"* OK " + b"still talking " * 4000 + b"\r\n"
    while peer.pause(0.001):
        peer.send(line * 16)


@pytest.mark.parametrize(("behaviour", "why"), [
    (silent, STALLED),
    (drip, STALLED),
    (endless_literal, "the server sent an IMAP literal of 1000000000 bytes past the bound of 16777216 bytes"),
    (slow_literal, STALLED),
    (endless_lines, "the server sent IMAP responses past the bound of 16777216 bytes for one wait"),
])
def test_hostile_imap_server_ends_within_the_wait(tmp_path, behaviour, why):
    with FaultServer("normal") as smtp, FaultServer(behaviour) as imap:
        plan = write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, port: {smtp.port}, timeout: 5}}
steps:
  - expect: 220
  - expect_delivery:
      mailbox: imap://alice@127.0.0.1:{imap.port}/INBOX
      password: hostile-secret
      within: {WITHIN}
""")
        t0 = time.monotonic()
        code, out, err = run(plan, "--no-report")
        took = time.monotonic() - t0
    assert code == 1, out + err
    assert took < WITHIN + 1, f"{took:.2f}s"
    reason = why.format(port=imap.port)
    assert reason in out, out
    assert "hostile-secret" not in out + err
