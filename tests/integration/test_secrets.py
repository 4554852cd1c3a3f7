"""Secrets stay out of every output, even when a server echoes them back or a plan's source names them."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from tests.integration.test_cli import run, write_plan

SECRET = "Hunter2-Secret-Value"


class EchoServer:
    """Greets, then answers every line with `250 you said: <line>` (a server that repeats what it hears)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    @staticmethod
    def _session(conn: socket.socket) -> None:
        with conn:
            conn.sendall(b"220 echo ready\r\n")
            for line in conn.makefile("rb"):
                conn.sendall(b"250 you said: " + line.rstrip(b"\r\n") + b"\r\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()


def everything(tmp_path: Path, out: str, err: str) -> str:
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".json", ".xml", ".html")]
    return "\n".join([out, err, *(p.read_text(errors="replace") for p in files)])


def test_a_secret_from_the_environment_is_sent_and_never_shown(tmp_path, echo, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", SECRET)
    plan = write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, port: {echo.port}, timeout: 5}}
vars:
  password: "{{{{ env.SMTP_PASSWORD }}}}"
secrets: [password]
steps:
  - expect: 220
  - send: "XPASS {{{{ password }}}}"
    expect: {{code: 250, text: "you said: XPASS"}}
  - raw: "XRAW\\t{{{{ password }}}}\\r\\n"
    expect: 250
    capture: {{said: "said: (.*)"}}
""")
    code, out, err = run(plan, "-v", "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml"),
                         "--report-dir", str(tmp_path / "reports"))
    text = everything(tmp_path, out, err)
    assert code == 0, text[:2000]
    assert SECRET not in text
    assert "XPASS ***" in text  # the line sent, as shown
    assert "you said: XPASS ***" in text  # the server's echo, as kept


def test_a_secret_written_in_the_plan_source_is_masked_in_reports(tmp_path, echo):
    plan = write_plan(tmp_path, f"""\
target: {{host: 127.0.0.1, port: {echo.port}, timeout: 5}}
vars: {{password: {SECRET}}}
secrets: [password]
steps:
  - expect: 220
  - send: "XPASS {{{{ password }}}}"
    expect: 554
""")
    code, out, err = run(plan, "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml"),
                         "--report-dir", str(tmp_path / "reports"))
    text = everything(tmp_path, out, err)
    assert code == 1
    assert SECRET not in text
    assert "got:      250 you said: XPASS ***" in out


def test_an_unset_environment_variable_in_vars_is_a_plan_error(tmp_path, monkeypatch):
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    plan = write_plan(tmp_path, """\
vars: {password: "{{ env.SMTP_PASSWORD }}"}
steps:
  - expect: 220
""")
    code, _, err = run("validate", plan)
    assert code == 2 and f"{plan}:1:18: error: environment variable SMTP_PASSWORD is not set" in err
