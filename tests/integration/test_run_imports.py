"""What a run loads: only what it uses. A plan without mail steps loads nothing of runner.mail, a run without
--json not the JSON writer, a plan that passed the schema before not jsonschema. Each run is a process of its own
(as a user starts it) against the embedded server, and reports the modules it ended with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.cli import ROOT

WATCHED = ("runner.mail", "runner.report.jsonout", "jsonschema")
PROBE = f"""
import sys
from runner.cli import main
status = main(sys.argv[1:])
print("loaded:", *sorted(m for m in sys.modules if m.split(".")[0] == "jsonschema" or m.startswith({WATCHED[:2]!r})))
sys.exit(status)
"""

MAIL_PLAN = """\
steps:
  - expect: 220
  - send: QUIT
    expect: 221
  - expect_delivery:
      mailbox: maildir:{maildir}
      within: 0.1
"""


def loaded(tmp_path: Path, *argv: str) -> tuple[int, set[str]]:
    """smtprun ARGV in a process of its own, its cache folder in tmp_path: its exit status and the watched modules
    it loaded (runner.mail.url, not runner.mail: a package's modules, not only the package)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("SMTPRUN_NO_CACHE", None)
    done = subprocess.run([sys.executable, "-c", PROBE, *argv, "--embedded", "--report-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    lines = [line for line in done.stdout.splitlines() if line.startswith("loaded:")]
    assert lines, done.stdout + done.stderr
    return done.returncode, set(lines[-1].split()[1:])


def test_a_plan_without_mail_steps_loads_no_mail_code_no_json_writer(tmp_path: Path) -> None:
    status, modules = loaded(tmp_path, str(ROOT / "plans/exchange.yaml"))
    assert status == 0
    assert not {m for m in modules if m.startswith(("runner.mail", "runner.report.jsonout"))}, modules


def test_a_plan_validated_before_does_not_load_jsonschema(tmp_path: Path) -> None:
    plan = str(ROOT / "plans/exchange.yaml")
    first = loaded(tmp_path, plan, "--no-report")
    assert first[0] == 0 and "jsonschema" in first[1]  # the first run checks the plan
    assert loaded(tmp_path, plan, "--no-report") == (0, set())


def test_json_loads_the_json_writer_and_mail_steps_the_mail_code(tmp_path: Path) -> None:
    plan = tmp_path / "mail.yaml"
    plan.write_text(MAIL_PLAN.format(maildir=tmp_path / "Maildir"))
    status, modules = loaded(tmp_path, str(plan), "--json", str(tmp_path / "run.json"), "--no-report")
    assert status == 1  # nothing is delivered to that Maildir
    assert {"runner.report.jsonout", "runner.mail.url", "runner.mail.reader"} <= modules
