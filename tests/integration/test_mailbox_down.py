"""When delivery or the receipt is broken, plans/roundtrip.yaml fails saying why: the mailbox server down
(refused, or back only after a while, as when it restarts), a refused password that is not tried again,
Postfix deferring the message; and a mailbox server that offers no IDLE is polled instead.

A down or restarting Dovecot is played by a relay on a loopback port in front of the shared Dovecot
(which other tests use, so it is never stopped): nothing listens there until the relay starts."""

from __future__ import annotations

import contextlib
import json
import mailbox
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.support.cli import ROOT, run, write_plan
from tests.support.mtas import CA_PATH, DEFER_DOMAIN, DOVECOT, POSTFIX, drop_queued, require_dovecot, require_smtp

pytestmark = pytest.mark.postfix

ROUNDTRIP = str(ROOT / "plans/roundtrip.yaml")
MESSAGE_ID = re.compile(r"smtprun\.[0-9a-f]+\.[0-9a-f]+@[A-Za-z0-9.-]+")


@pytest.fixture(scope="module")
def loop() -> None:
    require_smtp(POSTFIX)
    require_dovecot(DOVECOT)


@pytest.fixture
def sent() -> Iterator[set[str]]:
    """The Message-IDs a test's runs sent: their copies and receipts removed from alice's and bob's Maildirs
    afterwards (a failed step never deletes what it was waiting for; the files directly, as an IMAP login
    right after a refused one waits out Dovecot's penalty), and the deferred ones from Postfix's queue."""
    ids: set[str] = set()
    start = time.time() - 5
    yield ids
    drop_queued(DEFER_DOMAIN, ids)
    time.sleep(0.3)  # what Postfix was still delivering
    for user in DOVECOT.users:
        box = mailbox.Maildir(str(DOVECOT.maildir(user)), factory=None, create=False)
        for key in box.iterkeys():
            if float(key.split(".", 1)[0]) < start:  # <seconds>.<unique>.<host>: older than the test
                continue
            with contextlib.suppress(FileNotFoundError, KeyError):
                head = box.get_bytes(key)[:64 * 1024].decode("latin-1")
                if any(mid in head for mid in ids):
                    box.discard(key)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Relay:
    """127.0.0.1:port relayed to a server, listening only from `after` seconds on (before that the port
    refuses, as a restarting server's does); the words in `strip` are removed from what the server sends."""

    def __init__(self, target: tuple[str, int], after: float = 0.0, strip: tuple[bytes, ...] = ()) -> None:
        self.target, self.after, self.strip = target, after, strip
        self.port = free_port()
        self.accepted = 0
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.sockets: list[socket.socket] = []

    def __enter__(self) -> Relay:
        self._start(self._listen)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self.threads:
            thread.join(2)

    def _start(self, fn: object, *args: object) -> None:
        thread = threading.Thread(target=fn, args=args, daemon=True)  # type: ignore[arg-type]
        self.threads.append(thread)
        thread.start()

    def _listen(self) -> None:
        if self.stop.wait(self.after):
            return
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.1)
        self.sockets.append(listener)
        while not self.stop.is_set():
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            server = socket.create_connection(self.target, timeout=5)
            self.sockets += [client, server]
            self._start(self._pipe, client, server, ())
            self._start(self._pipe, server, client, self.strip)

    def _pipe(self, src: socket.socket, dst: socket.socket, strip: tuple[bytes, ...]) -> None:
        src.settimeout(0.2)
        while not self.stop.is_set():
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            for word in strip:
                data = data.replace(word, b"")
            with contextlib.suppress(OSError):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def run_json(tmp_path: Path, plan: str, *args: str, sent: set[str] | None = None) -> tuple[int, str, dict]:
    code, out, err = run(plan, "--json", str(tmp_path / "r.json"), "--no-report", *args)
    text = (tmp_path / "r.json").read_text()
    if sent is not None:
        sent.update(MESSAGE_ID.findall(text))
    return code, out + err, json.loads(text)


def cases(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["plans"][0]["cases"]}


def step(case: dict, action: str) -> dict:
    return next(s for s in case["steps"] if s["action"] == action and s["status"] != "skipped")


BASIC, ADVANCED, BOUNCE = ("basic test, and the message arrived", "advanced test, and the receipt came back",
                           "a failure comes back as a failed receipt")


def test_roundtrip_fails_when_the_mailbox_server_is_down(loop, tmp_path, sent):
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    code, out, report = run_json(tmp_path, ROUNDTRIP, "--var", f"cafile={CA_PATH}", "--var", "within=2",
                                 "--var", f"rcpt_mailbox=imap://alice@127.0.0.1:{port}/INBOX", sent=sent)
    took = time.monotonic() - t0
    assert code == 1, out
    assert 2 <= took < 5, f"{took:.1f}s"  # tried again until within: ran out, not a moment longer
    for name in (BASIC, ADVANCED):
        delivery = step(cases(report)[name], "expect_delivery")
        reason = delivery["reason"]
        assert re.fullmatch(rf"IMAP server 127\.0\.0\.1:{port}: Connection refused; tried [4-9] times in 2\.\ds "
                            rf"\(waiting for message with Message-ID <{MESSAGE_ID.pattern}> in "
                            rf"imap://alice@127\.0\.0\.1:{port}/INBOX\)", reason), reason
        assert reason in out
        assert delivery["details"]["failed_tries"] >= 4 and delivery["details"]["found"] is False
    assert cases(report)[BOUNCE]["status"] == "passed"  # the sender's mailbox is up: its receipt came back
    assert "alice-password" not in out + json.dumps(report)


def test_a_mailbox_server_back_after_a_restart_is_reached(loop, tmp_path, sent):
    with Relay((DOVECOT.host, DOVECOT.imap_port), after=0.8) as relay:
        code, out, report = run_json(
            tmp_path, ROUNDTRIP, "-v", "--var", f"cafile={CA_PATH}", "--var", "within=10",
            "--var", f"rcpt_mailbox=imap://alice@127.0.0.1:{relay.port}/INBOX", sent=sent)
    assert code == 0, out
    delivery = step(cases(report)[BASIC], "expect_delivery")
    assert delivery["details"]["found"] and delivery["details"]["deleted"]
    assert delivery["details"]["failed_tries"] >= 2
    transcript = "\n".join(e["data"] for e in cases(report)[BASIC]["transcript"])
    assert f"IMAP server 127.0.0.1:{relay.port}: Connection refused; trying again in 0.2s" in transcript
    assert "trying again in 0.4s" in transcript
    assert "alice-password" not in out + json.dumps(report)


def test_a_refused_password_after_the_server_came_back_is_not_tried_again(loop, tmp_path, sent):
    secret = "not-alices-password-0815"
    plan = write_plan(tmp_path, (ROOT / "plans/roundtrip.yaml").read_text().replace(
        'rcpt_password: alice-password', 'rcpt_password: "{{ env.MAILBOX_DOWN_PASSWORD }}"'))
    os.environ["MAILBOX_DOWN_PASSWORD"] = secret
    try:
        with Relay((DOVECOT.host, DOVECOT.imaps_port), after=0.5) as relay:
            t0 = time.monotonic()
            code, out, err = run(plan, "-v", "--var", f"cafile={CA_PATH}", "--var", "within=10",
                                 "--var", f"rcpt_mailbox=imaps://alice@127.0.0.1:{relay.port}/INBOX",
                                 "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml"),
                                 "--report-dir", str(tmp_path / "html"))
            took = time.monotonic() - t0
            logins = relay.accepted
    finally:
        del os.environ["MAILBOX_DOWN_PASSWORD"]
    report = json.loads((tmp_path / "r.json").read_text())
    sent.update(MESSAGE_ID.findall(json.dumps(report)))
    assert code == 1, out + err
    assert took < 6, f"{took:.1f}s: the refused login was tried again"  # (Dovecot answers a failed login in 2s)
    reason = step(cases(report)[BASIC], "expect_delivery")["reason"]
    assert re.match(rf"IMAP login as alice at 127\.0\.0\.1:{relay.port} refused: \[AUTHENTICATIONFAILED\] "
                    rf"Authentication failed\. \(after [1-9] failed attempts?: IMAP server 127\.0\.0\.1:{relay.port}: "
                    r"Connection refused\) \(waiting for ", reason), reason
    assert logins == 2  # one connection each for the two cases that read alice's mailbox, none again
    written = [p for p in tmp_path.rglob("*") if p.suffix in (".json", ".xml", ".html")]
    assert {p.suffix for p in written} == {".json", ".xml", ".html"}
    for text in (out, err, *(p.read_text() for p in written)):
        assert secret not in text
    assert "LOGIN alice ********" in out


def test_roundtrip_fails_naming_the_wait_when_postfix_defers(loop, tmp_path, sent):
    t0 = time.monotonic()
    code, out, report = run_json(tmp_path, ROUNDTRIP, "--var", f"cafile={CA_PATH}", "--var", "within=2",
                                 "--var", f"rcpt=someone@{DEFER_DOMAIN}", "--var", f"bouncing=nobody@{DEFER_DOMAIN}",
                                 sent=sent)
    assert code == 1, out
    assert time.monotonic() - t0 < 6
    by_name = cases(report)
    for name in (BASIC, ADVANCED):
        reason = step(by_name[name], "expect_delivery")["reason"]
        assert re.fullmatch(rf"no message with Message-ID <{MESSAGE_ID.pattern}> arrived in "
                            r"imap://alice@127\.0\.0\.1:143/INBOX within 2s \(looked \d+ times\)", reason), reason
        assert reason in out
    reason = step(by_name[BOUNCE], "expect_dsn")["reason"]
    assert re.fullmatch(rf"no delivery report about <{MESSAGE_ID.pattern}> arrived in "
                        r"imap://bob@127\.0\.0\.1:143/INBOX within 2s \(looked \d+ times\)", reason), reason
    assert reason in out
    assert drop_queued(DEFER_DOMAIN, sent) == 3  # all three are still in Postfix's queue, deferred


def test_a_mailbox_server_without_idle_is_polled(loop, tmp_path):
    message_id = f"smtprun.noidle.{os.getpid()}.{time.time_ns()}@client.smtprun.test"
    message = f"Message-ID: <{message_id}>\r\nSubject: late\r\n\r\nfiled late\r\n".encode()

    def file_it_late() -> None:  # the message arrives while the step waits
        time.sleep(1.2)
        with IMAPClient(DOVECOT.host, DOVECOT.imap_port, ssl=False, timeout=10) as imap:
            imap.login("alice", DOVECOT.users["alice"])
            imap.append("INBOX", message)

    # without STARTTLS too, so that what the server offers after it is not hidden from the relay
    with Relay((DOVECOT.host, DOVECOT.imap_port), strip=(b" IDLE", b" STARTTLS")) as relay:
        plan = write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, port: 25, timeout: 10}}
vars: {{message_id: "{message_id}"}}
steps:
  - expect: 220
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: imap://alice@127.0.0.1:{relay.port}/INBOX
      password: alice-password
      cafile: {CA_PATH}
      within: 10
      delete: true
""")
        later = threading.Thread(target=file_it_late)
        later.start()
        code, out, report = run_json(tmp_path, plan)
        later.join()
    assert code == 0, out
    delivery = step(report["plans"][0]["cases"][0], "expect_delivery")
    assert delivery["details"]["found"] and delivery["details"]["waited"] >= 1.0
    transcript = [e["data"] for e in report["plans"][0]["cases"][0]["transcript"]]
    assert "IMAP C: NOOP (the server offers no IDLE)" in transcript
    assert not any("IDLE (up to" in line for line in transcript)
