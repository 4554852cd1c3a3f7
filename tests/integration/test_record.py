"""`smtprun record` against real servers on loopback: what is typed reaches the server, the plan
written replays as passing, and a real terminal (tmux) gets line editing and live replies."""

from __future__ import annotations

import argparse
import base64
import io
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from runner.cli import main as smtprun
from runner.tools.record import add_arguments, run
from runner.tools.server import EmbeddedServer, ServerAuth, ServerTls
from tests.support.cli import ROOT
from tests.support.faults import FaultServer, Peer
from tests.support.mtas import EXIM, require_smtp

BODY = "Subject: recorded\n\n.a line starting with a dot\n..two dots\n{{ not a template }}\nend\n"
BODY_ON_ARRIVAL = BODY.replace("\n", "\r\n").encode()  # the server takes the dots off again


def record(server: EmbeddedServer, typed: str, *options: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([f"{server.host}:{server.port}", "--timeout", "5", *options])
    out, err = io.StringIO(), io.StringIO()
    code = run(args, out, err, io.StringIO(typed))
    return code, out.getvalue(), err.getvalue()


def replay(plan: Path | str, server: EmbeddedServer) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = smtprun([str(plan), "--host", server.host, "--port", str(server.port), "--no-report"], out=out, err=err)
    assert code == 0, out.getvalue() + err.getvalue()


def session(body: str) -> str:
    return ("EHLO client.test\nMAIL FROM:<alice@client.test>\nRCPT TO:<bob@server.test>\nDATA\n"
            f"{body}.\nQUIT\n")


def test_recorded_session_replays_and_its_body_arrives_byte_identical(tmp_path, embedded):
    plan = tmp_path / "plans" / "new.yaml"
    code, shown, err = record(embedded, session(BODY), "-o", str(plan), "--name", "recorded session")
    assert code == 0, err
    assert "S: 250 2.1.5 Recipient OK" in shown and "S: 221 2.0.0 Bye" in shown
    text = plan.read_text()
    assert text.startswith(f"# Recorded by `smtprun record` from {embedded.host}:{embedded.port} at ")
    assert f"target:\n  host: {embedded.host}\n  port: {embedded.port}\n  timeout: 5\n" in text
    assert "steps:\n  - expect: 220  # mail.smtprun.test smtprun ESMTP ready\n" in text
    assert '  - send: "RCPT TO:<bob@server.test>"\n    expect: 250  # 2.1.5 Recipient OK\n' in text
    assert "  - data: |\n      Subject: recorded\n\n      .a line starting with a dot\n" in text
    assert text.count("- data:") == 1 and "- send: QUIT\n    expect: 221" in text
    assert [m.data for m in embedded.messages] == [BODY_ON_ARRIVAL]

    replay(plan, embedded)
    assert [m.data for m in embedded.messages] == [BODY_ON_ARRIVAL] * 2


def test_plan_to_stdout_with_a_file_body_and_a_slash_escape(tmp_path, embedded):
    body = tmp_path / "message.eml"
    body.write_bytes(b"Subject: from a file\r\n\r\n.dot\r\nno final line end")
    typed = session(f"/file {body}\n").replace(".\nQUIT", "//etc is not a local command\nQUIT")
    code, plan, shown = record(embedded, typed)
    assert code == 0, shown
    assert f"  - data_file: {body}\n" in plan or f'  - data_file: "{body}"\n' in plan
    assert "  - send: /etc is not a local command\n    expect: 500" in plan.replace('"', "")
    assert embedded.messages[0].data == b"Subject: from a file\r\n\r\n.dot\r\nno final line end\r\n"
    written = tmp_path / "elsewhere.yaml"
    written.write_text(plan)
    replay(written, embedded)
    assert embedded.messages[1].data == embedded.messages[0].data


def test_starttls_is_recorded_as_a_step_and_replays(tmp_path, test_ca):
    ca = tmp_path / "ca.pem"
    test_ca.ca.cert_pem.write_to_path(str(ca))
    with EmbeddedServer(tls=ServerTls(test_ca.server_context())) as server:
        code, shown, err = record(server, "EHLO a.test\n/tls\nEHLO a.test\nQUIT\n",
                                  "-o", str(tmp_path / "tls.yaml"), "--cafile", str(ca))
        assert code == 0, err
        assert "* TLS established: TLSv1." in shown and ", verified\n" in shown
        assert f'  - starttls: {{cafile: "{ca}"}}\n' in (tmp_path / "tls.yaml").read_text()
        replay(tmp_path / "tls.yaml", server)


TLS_SESSION = "EHLO a.test\n/tls\nEHLO a.test\nQUIT\n"


def test_tls_shows_the_session_as_run_v_does_and_replays_against_postfix(tmp_path, postfix):
    plan = tmp_path / "tls.yaml"
    code, shown, err = record(postfix, TLS_SESSION, "-o", str(plan), "--cafile", str(postfix.ca_path))
    assert code == 0, shown + err
    tls_line = next(line for line in shown.splitlines() if "TLS established" in line)
    assert tls_line.startswith("* TLS established: TLSv1.") and tls_line.endswith(
        ", certificate commonName=mail.smtprun.test, verified"), shown
    out = io.StringIO()
    assert smtprun([str(plan), "-v", "--no-report"], out=out, err=io.StringIO()) == 0, out.getvalue()
    assert f"  {tls_line}\n" in out.getvalue()  # the very line `smtprun -v` prints, facts and words

    code, shown, err = record(postfix, TLS_SESSION, "-o", str(plan), "--no-verify")
    assert code == 0 and "commonName=mail.smtprun.test, not verified (verify: false)" in shown, shown + err
    assert "  - starttls: {verify: false}\n" in plan.read_text()


def test_a_certificate_that_does_not_verify_ends_the_session_says_what_to_give_and_exits_1(tmp_path, postfix):
    plan = tmp_path / "tls.yaml"
    code, shown, err = record(postfix, TLS_SESSION, "-o", str(plan))
    assert code == 1, shown + err
    assert "* certificate verification failed: unable to get local issuer certificate; the session cannot go " \
           "on\n* give --cafile PEM (the CA that issued the server's certificate) to trust it, or --no-verify to " \
           "record without checking it\n" in shown
    text = plan.read_text()
    assert "STARTTLS" not in text and text.endswith(
        "  # TLS did not start: certificate verification failed: unable to get local issuer certificate\n"
        "  - starttls: {}\n"), text
    out = io.StringIO()  # replayed, it stops where the recording did, for the same reason
    assert smtprun([str(plan), "--no-report"], out=out, err=io.StringIO()) == 1
    assert "step 3 at" in out.getvalue() and "why:      certificate verification failed" in out.getvalue()


def test_implicit_tls_whose_certificate_does_not_verify_says_what_to_give(tmp_path, test_ca):
    ca = tmp_path / "ca.pem"
    test_ca.ca.cert_pem.write_to_path(str(ca))
    with EmbeddedServer(tls=ServerTls(test_ca.server_context(), implicit=True)) as server:
        code, _, err = record(server, "QUIT\n", "--tls", "implicit")
        assert code == 1 and "certificate verification failed" in err and "give --cafile PEM" in err, err
        code, _, err = record(server, "QUIT\n", "--tls", "implicit", "--cafile", str(ca))
    assert code == 0, err
    assert "* TLS established: TLSv1." in err and ", verified\n" in err  # without -o the session shows on stderr


def late_reply(peer: Peer) -> None:
    peer.send(b"220 slow.test ESMTP\r\n")
    peer.read_line()
    peer.pause(1.5)  # past the recorder's --timeout 1
    peer.send(b"250 slow.test late\r\n")
    peer.read_line()
    peer.send(b"221 bye\r\n")


def test_silence_is_a_comment_and_a_late_reply_its_own_step(tmp_path):
    class Typist(io.StringIO):  # types each line after the first a second later, as a person would
        def readline(self, *_: object) -> str:
            if self.tell():
                time.sleep(1)
            return super().readline()

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    with FaultServer(late_reply) as server:
        args = parser.parse_args([f"127.0.0.1:{server.port}", "--timeout", "1"])
        code = run(args, out, err, Typist("EHLO x\nQUIT\n"))
    plan = out.getvalue()
    assert code == 0, err.getvalue()
    assert "  # no reply within 1s\n  - send: EHLO x\n  # a reply nothing waited for" in plan, plan
    assert "  - expect: 250  # slow.test late\n" in plan


def test_failures_exit_with_a_status_and_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    for target, status, message in [(f"127.0.0.1:{closed_port}", 1, "cannot connect to 127.0.0.1:"),
                                     ("no-such-host.invalid:25", 1, "cannot resolve no-such-host.invalid:25"),
                                     ("[::1:25", 2, "expected [IPv6] or [IPv6]:PORT")]:
        done = subprocess.run([sys.executable, "-m", "runner", "record", target, "--timeout", "5"], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        assert (done.returncode, "Traceback" in done.stderr) == (status, False), done.stderr
        assert message in done.stderr


def test_ctrl_c_writes_what_was_recorded_and_exits_130(tmp_path, embedded):
    plan = tmp_path / "cut.yaml"
    command = [sys.executable, "-m", "runner", "record", f"{embedded.host}:{embedded.port}", "-o", str(plan)]
    proc = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    watchdog = threading.Timer(30, proc.kill)
    watchdog.start()
    proc.stdin.write("EHLO client.test\n")
    proc.stdin.flush()
    for shown in proc.stdout:
        if "S: 250 HELP" in shown:
            break
    time.sleep(0.5)  # a person's reaction time: the reply is recorded by then
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    watchdog.cancel()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "  - send: EHLO client.test\n    expect: 250" in plan.read_text()


class Terminal:
    """A program in a tmux pane of its own tmux server, typed at with send-keys."""

    def __init__(self, command: str, tmp_path: Path) -> None:
        if shutil.which("tmux") is None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail("tmux is not installed")
            pytest.skip("tmux is not installed")
        self.tmux = ["tmux", "-S", str(tmp_path / "tmux.socket")]  # a tmux server of its own
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        subprocess.run([*self.tmux, "new-session", "-d", "-s", "rec", "-x", "120", "-y", "40", command],
                       env=env, check=True, timeout=10)

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-J", "-S", "-", "-t", "rec"],
                              capture_output=True, text=True, timeout=10).stdout

    def prompts(self) -> int:
        return sum(line.startswith("C:") for line in self.screen().splitlines())

    def wait_for(self, text: str, seconds: float = 10) -> str:
        deadline = time.monotonic() + seconds
        while text not in (screen := self.screen()):
            if time.monotonic() > deadline:
                pytest.fail(f"{text!r} never appeared on the terminal:\n{screen}")
            time.sleep(0.05)
        return screen

    def keys(self, *keys: str, literal: bool = False) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "rec", *(["-l"] if literal else []), *keys],
                       check=True, timeout=10)

    def line(self, text: str) -> None:
        """Type a line at readline's prompt and wait for the next prompt (after any reply)."""
        before = self.prompts()
        self.keys(text, literal=True)
        self.keys("Enter")
        deadline = time.monotonic() + 10
        while self.prompts() <= before and "EXIT=" not in self.screen() and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True, timeout=10)


def recorder_command(tmp_path: Path, host: str, port: int, plan: Path) -> str:
    run_it = shlex.join([sys.executable, "-m", "runner", "record", f"{host}:{port}", "-o", str(plan)])
    return (f"cd {shlex.quote(str(ROOT))} && HOME={shlex.quote(str(tmp_path))} "
            f"PYTHONPATH={shlex.quote(str(ROOT))} {run_it}; echo EXIT=$?; sleep 60")


def test_terminal_session_with_line_editing_shows_replies_and_replays(tmp_path, embedded):
    plan = tmp_path / "typed.yaml"
    term = Terminal(recorder_command(tmp_path, embedded.host, embedded.port, plan), tmp_path)
    try:
        term.wait_for("S: 220 mail.smtprun.test smtprun ESMTP ready")
        term.wait_for("C: ")
        term.keys("EHLO clientX", literal=True)
        term.keys("BSpace")  # readline's editing: the X never reaches the server
        term.line(".test")
        term.line("MAIL FROM:<alice@client.test>")
        term.line("RCPT TO:<bob@server.test>")
        term.line("DATA")
        for body_line in BODY.splitlines():
            term.line(body_line)
        term.line(".")
        term.line("QUIT")
        screen = term.wait_for("EXIT=0")
    finally:
        term.close()
    for shown in ("C: EHLO client.test", "S: 250 HELP", "S: 250 2.1.0 Sender OK", "S: 354 End data with",
                  "S: 250 2.0.0 Ok: queued as", "S: 221 2.0.0 Bye", f"* plan written to {plan}"):
        assert shown in screen, screen
    assert "  - send: EHLO client.test\n    expect: 250" in plan.read_text()
    assert "EHLO client.test" in (tmp_path / ".smtprun_history").read_text()
    assert [m.data for m in embedded.messages] == [BODY_ON_ARRIVAL]
    replay(plan, embedded)
    assert [m.data for m in embedded.messages] == [BODY_ON_ARRIVAL] * 2


def idle_timeout(peer: Peer) -> None:
    peer.send(b"220 idle.test ESMTP\r\n")
    peer.pause(1)
    peer.send(b"421 4.4.2 idle.test idle timeout\r\n")


def test_terminal_session_ends_when_the_server_hangs_up_at_the_prompt(tmp_path):
    plan = tmp_path / "idle.yaml"
    with FaultServer(idle_timeout) as server:
        term = Terminal(recorder_command(tmp_path, "127.0.0.1", server.port, plan), tmp_path)
        try:
            term.wait_for("C: ")
            term.keys("NOO", literal=True)  # half typed, never sent: the session ends without Enter
            screen = term.wait_for("EXIT=0")
        finally:
            term.close()
    assert "S: 421 4.4.2 idle.test idle timeout" in screen and "* the server closed the connection" in screen
    assert "  - expect: 421  # 4.4.2 idle.test idle timeout\n" in plan.read_text()


def test_auth_credentials_are_kept_out_of_the_plan(tmp_path):
    plain = base64.b64encode(b"\0alice\0s3cret-pw").decode()
    user, password = base64.b64encode(b"alice").decode(), base64.b64encode(b"s3cret-pw").decode()
    with EmbeddedServer(auth=ServerAuth("alice", "s3cret-pw", require_tls=False)) as server:
        typed = f"EHLO x\nAUTH PLAIN {plain}\nQUIT\n"
        code, _, err = record(server, typed, "-o", str(tmp_path / "plain.yaml"))
        assert code == 0, err
        login = f"EHLO x\nAUTH LOGIN\n{user}\n{password}\nQUIT\n"
        code, _, err = record(server, login, "-o", str(tmp_path / "l.yaml"))
        assert code == 0, err
        runs = (("plain.yaml", [f"auth_1={plain}"]), ("l.yaml", [f"auth_1={user}", f"auth_2={password}"]))
        for name, secrets in runs:
            text = (tmp_path / name).read_text()
            assert plain not in text and password not in text and "secrets: [auth_1" in text
            args = [str(tmp_path / name), "--host", server.host, "--port", str(server.port), "--no-report"]
            for secret in secrets:
                args += ["--secret", secret]
            assert smtprun(args, out=io.StringIO(), err=io.StringIO()) == 0


def test_a_recorded_auth_replayed_without_its_secret_says_what_to_give_before_sending(tmp_path):
    server = require_smtp(EXIM)
    plain = base64.b64encode(f"\0alice\0{server.users['alice']}".encode()).decode()
    plan = tmp_path / "auth.yaml"
    typed = f"EHLO a.test\n/tls\nEHLO a.test\nAUTH PLAIN {plain}\nQUIT\n"
    code, shown, err = record(server, typed, "-o", str(plan), "--cafile", str(server.ca_path))
    assert code == 0, shown + err
    assert plain not in plan.read_text() and '    expect: 235  # Authentication succeeded\n' in plan.read_text()
    env = {k: v for k, v in os.environ.items() if k != "SMTPRUN_AUTH_1"}
    done = subprocess.run([sys.executable, "-m", "runner", str(plan), "--no-report"], capture_output=True,
                          text=True, timeout=60, env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error: environment variable SMTPRUN_AUTH_1 is not set" in done.stderr
    assert "give --secret auth_1=... or SMTPRUN_AUTH_1=..." in done.stderr and "nothing was sent" in done.stderr
    assert "334" not in done.stdout + done.stderr
    given = [str(plan), "--no-report", "--secret", f"auth_1={plain}"]
    assert smtprun(given, out=io.StringIO(), err=io.StringIO()) == 0
    done = subprocess.run([sys.executable, "-m", "runner", str(plan), "--no-report"], capture_output=True,
                          text=True, timeout=60, env={**env, "PYTHONPATH": str(ROOT), "SMTPRUN_AUTH_1": plain})
    assert done.returncode == 0, done.stdout + done.stderr
