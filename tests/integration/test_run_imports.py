"""What a run loads: only what it uses. A plan without mail steps loads nothing of runner.mail, a run without
--json not the JSON writer, a plan that passed the schema before not jsonschema, a plain plan (commands and a body
over plain TCP) none of the code of TLS clients, typed step options, smuggling, DNS, worker processes or report
comparison: each is start-up time a user waits for. Each run is a process of its own (as a user starts it) against
the embedded server, and reports the modules it ended with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runner.tools.server import EmbeddedServer
from tests.support.cli import ROOT

WATCHED = ("runner.mail", "runner.report.jsonout", "jsonschema")
# What a plain plan's run does not need, each a few milliseconds of start-up (python -X importtime)
NOT_FOR_A_PLAIN_PLAN = ("runner.mail", "runner.plan.options", "runner.run.smuggle", "runner.smtp.smuggling",
                        "runner.net.tlsclient", "runner.run.tlsclient", "runner.plan.tlscheck", "runner.net.dns",
                        "runner.net.cares", "runner.smtp.proxy", "runner.run.workers", "multiprocessing",
                        "runner.report.compare", "runner.report.tlsfacts", "runner.plan.synonyms",
                        "runner.plan.syntax", "runner.plan.broken")  # the last three explain mistakes
PROBE = f"""
import sys
from runner.cli import main
status = main(sys.argv[1:])
watched = {WATCHED + NOT_FOR_A_PLAIN_PLAN!r}
print("loaded:", *sorted(m for m in sys.modules if m in watched or m.startswith(tuple(w + "." for w in watched))))
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


RAW_PLAN = """\
steps:
  - expect: 220
  - raw: ["NOOP\\r\\n", {pause: 0.01}]
    expect: 250
  - send: QUIT
    expect: 221
"""


def loaded(tmp_path: Path, *argv: str, target: tuple[str, ...] = ("--embedded",)) -> tuple[int, set[str]]:
    """smtprun ARGV in a process of its own, its cache folder in tmp_path: its exit status and the watched modules
    it loaded (runner.mail.url, not runner.mail: a package's modules, not only the package)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("SMTPRUN_NO_CACHE", None)
    done = subprocess.run([sys.executable, "-c", PROBE, *argv, *target, "--report-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    lines = [line for line in done.stdout.splitlines() if line.startswith("loaded:")]
    assert lines, done.stdout + done.stderr
    return done.returncode, set(lines[-1].split()[1:])


def test_a_plan_without_mail_steps_loads_no_mail_code_no_json_writer(tmp_path: Path) -> None:
    status, modules = loaded(tmp_path, str(ROOT / "plans/exchange.yaml"))
    assert status == 0
    assert not {m for m in modules if m.startswith(("runner.mail", "runner.report.jsonout"))}, modules


def test_a_plain_plan_loads_only_what_it_runs(tmp_path: Path) -> None:
    """Commands and a body over plain TCP, its first HTML report; the plan's second run against the same server
    compares with the first, and so loads the comparison."""
    with EmbeddedServer() as server:
        target = ("--host", "127.0.0.1", "--port", str(server.port))
        status, modules = loaded(tmp_path, str(ROOT / "plans/exchange.yaml"), target=target)
        assert status == 0
        assert not {m for m in modules if m.startswith(NOT_FOR_A_PLAIN_PLAN)}, modules
        status, modules = loaded(tmp_path, str(ROOT / "plans/exchange.yaml"), target=target)
        assert status == 0 and "runner.report.compare" in modules


def test_a_step_with_typed_options_loads_them(tmp_path: Path) -> None:
    plan = tmp_path / "raw.yaml"
    plan.write_text(RAW_PLAN)
    status, modules = loaded(tmp_path, str(plan), "--no-report")
    assert status == 0
    assert {"runner.plan.options", "runner.run.smuggle"} <= modules  # raw:'s pauses are paced as smuggle:'s


def test_a_plan_validated_before_does_not_load_jsonschema(tmp_path: Path) -> None:
    plan = str(ROOT / "plans/exchange.yaml")
    first = loaded(tmp_path, plan, "--no-report")
    assert first[0] == 0 and "jsonschema" in first[1]  # the first run checks the plan
    assert loaded(tmp_path, plan, "--no-report") == (0, set())  # nothing watched: not even for a plain plan


def test_json_loads_the_json_writer_and_mail_steps_the_mail_code(tmp_path: Path) -> None:
    plan = tmp_path / "mail.yaml"
    plan.write_text(MAIL_PLAN.format(maildir=tmp_path / "Maildir"))
    status, modules = loaded(tmp_path, str(plan), "--json", str(tmp_path / "run.json"), "--no-report")
    assert status == 1  # nothing is delivered to that Maildir
    assert {"runner.report.jsonout", "runner.mail.url", "runner.mail.reader"} <= modules
