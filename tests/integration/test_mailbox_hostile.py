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


def refusing_login(words: bytes):
    """An IMAP server that answers every LOGIN with NO and `words` (an RFC 5530 response code first)."""
    def behaviour(peer: Peer) -> None:
        peer.send(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")
        while (line := peer.read_line()) is not None:
            tag, _, command = line.partition(b" ")
            verb = command.split(b" ", 1)[0].strip().upper()
            if verb == b"LOGIN":
                peer.send(tag + b" NO " + words + b"\r\n")
            elif verb == b"CAPABILITY":
                peer.send(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
            else:
                peer.send(b"* BYE\r\n" + tag + b" OK bye\r\n")
                return
    behaviour.__name__ = "refusing_login"
    return behaviour


def wait_on(tmp_path, imap: FaultServer, smtp: FaultServer) -> tuple[int, str]:
    plan = write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, port: {smtp.port}, timeout: 5}}
steps:
  - expect: 220
  - expect_delivery:
      mailbox: imap://alice@127.0.0.1:{imap.port}/INBOX
      password: hostile-secret
      within: {WITHIN}
""")
    code, out, err = run(plan, "--no-report")
    return code, out + err


def test_an_imap_server_too_busy_to_log_in_is_tried_again_and_its_words_shown(tmp_path):
    """The server's words come through imaplib's error text (imapclient gives nothing else): shown without
    its wrapping, and read for "try later" (RFC 5530 UNAVAILABLE), so a busy server is tried again."""
    busy = b"[UNAVAILABLE] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)"
    with FaultServer("normal") as smtp, FaultServer(refusing_login(busy)) as imap:
        code, out = wait_on(tmp_path, imap, smtp)
    assert code == 1, out
    assert (f"IMAP login as alice at 127.0.0.1:{imap.port} refused: {busy.decode()}; tried " in out
            and imap.accepted > 1), out


def test_an_imap_server_refusing_the_password_is_not_tried_again(tmp_path):
    with FaultServer("normal") as smtp, FaultServer(refusing_login(b"[AUTHENTICATIONFAILED] Authentication failed.")
                                                    ) as imap:
        code, out = wait_on(tmp_path, imap, smtp)
    assert code == 1, out
    assert f"IMAP login as alice at 127.0.0.1:{imap.port} refused: [AUTHENTICATIONFAILED] Authentication failed." in out
    assert imap.accepted == 1 and "tried" not in out, out
