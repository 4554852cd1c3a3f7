"""Secrets stay out of every output, even when a server echoes them back or a plan's source names them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import run, write_plan
from tests.support.faults import FaultServer

SECRET = "Hunter2-Secret-Value"


@pytest.fixture
def echo() -> Iterator[FaultServer]:
    """A server that answers every line with `250 you said: <line>`."""
    with FaultServer("echo") as server:
        yield server


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
