"""What a mail admin's first day with the command line turns up: mistyped variables, folders of plans,
options that do nothing where they are given. None of these may send anything (the network guard)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.support.cli import ROOT, run, write_plan

POSTFIX = str(ROOT / "plans/postfix.yaml")


# --- --var and --secret that no plan reads ------------------------------------------------------------------------

def test_a_mistyped_var_is_refused_before_anything_is_sent() -> None:
    code, out, err = run(POSTFIX, "--host", "127.0.0.1", "--var", "rctp=nosuch@x.test", "--no-report")
    assert code == 2
    assert err == f"smtprun: --var rctp: no variable 'rctp' in {POSTFIX}; did you mean 'rcpt'?\n"
    assert "PASS" not in out


def test_validate_refuses_a_mistyped_var_too() -> None:
    code, out, err = run("validate", POSTFIX, "--var", "rctp=nosuch@x.test")
    assert (code, out) == (2, "")
    assert "did you mean 'rcpt'?" in err


def test_a_secret_no_plan_reads_is_refused_without_showing_its_value(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, "vars: {password: x}\nsecrets: [password]\nsteps:\n  - expect: 220\n")
    code, _, err = run("validate", plan, "--secret", "pasword=hunter2-secret")
    assert code == 2
    assert err == f"smtprun: --secret pasword: no variable 'pasword' in {plan}; did you mean 'password'?\n"


def test_every_unknown_name_is_listed_and_one_plan_of_several_is_enough(tmp_path: Path) -> None:
    first = write_plan(tmp_path, "vars: {helo: a.test}\nsteps:\n  - send: 'EHLO {{ helo }}'\n", "a.yaml")
    second = write_plan(tmp_path, "steps:\n  - send: 'RCPT TO:<{{ rcpt }}>'\n", "b.yaml")
    assert run("validate", first, second, "--var", "rcpt=a@b.test", "--var", "helo=c.test")[0] == 0
    code, _, err = run("validate", first, second, "--var", "rcpt=a@b.test", "--var", "zzzz=1", "--var", "hello=x")
    assert code == 2
    assert err.splitlines() == ["smtprun: --var zzzz: no variable 'zzzz' in any of the 2 plans",
                                "smtprun: --var hello: no variable 'hello' in any of the 2 plans; did you mean 'helo'?"]


def test_a_var_read_only_by_a_template_or_an_include_counts(tmp_path: Path) -> None:
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "mail.yaml").write_text("steps:\n  - send: 'MAIL FROM:<{{ sender }}>'\n")
    plan = write_plan(tmp_path, "target: {mx: '{{ domain }}'}\nsteps:\n  - include: common/mail.yaml\n")
    assert run("validate", plan, "--var", "domain=example.test", "--var", "sender=a@example.test")[0] == 0


# --- warnings: envelope paths without angle brackets ---------------------------------------------------------------

ENVELOPES = """\
vars: {sender: Admin@test.com, rcpt: "<bob@example.com>"}
steps:
  - send: "MAIL FROM:Admin@test.com"
  - send: "RCPT TO: Utilisateur@Domaine.Com NOTIFY=NEVER"
  - send: "MAIL FROM:{{ sender }}"
  - send: "RCPT TO:{{ rcpt }}"
  - send: "MAIL FROM:<{{ sender }}> SIZE=10"
  - send: "MAIL FROM:<>"
  - send: NOOP
    capture: {captured: '(\\\\S+)'}
  - send: "RCPT TO:{{ captured }}"
  - pipeline:
      - send: "rcpt to:x@y.test"
      - send: DATA
"""


def test_validate_warns_of_each_unbracketed_path_and_still_passes(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, ENVELOPES)
    code, out, err = run("validate", plan)
    assert (code, out) == (0, f"{plan}: ok (1 case)\n")
    heads = [line for line in err.splitlines() if "angle brackets" in line]  # (the replies left unread: elsewhere)
    mail = 'MAIL FROM without angle brackets: a strict server answers 553 5.1.0 or 501 5.1.7 ' \
           '(RFC 5321 §4.1.2 wants "<" path ">")'
    rcpt = 'RCPT TO without angle brackets: a strict server answers 501 5.1.3 (RFC 5321 §4.1.2 wants "<" path ">")'
    assert heads == [f"{plan}:3:22: warning: {mail}", f"{plan}:4:21: warning: {rcpt}",
                     f"{plan}:5:22: warning: {mail}", f"{plan}:13:24: warning: {rcpt}"]
    hints = [line.strip() for line in err.splitlines() if line.startswith("    hint: write")]
    assert hints == [f"hint: write {fix}; smtprun sends the line as written" for fix in (
        "MAIL FROM:<Admin@test.com>", "RCPT TO:<Utilisateur@Domaine.Com>", "MAIL FROM:<{{ sender }}>",
        "RCPT TO:<x@y.test>")]


def test_a_warning_in_an_included_file_says_where_it_was_included_from(tmp_path: Path) -> None:
    (tmp_path / "mail.yaml").write_text("steps:\n  - send: 'MAIL FROM:a@b.test'\n")
    plan = write_plan(tmp_path, "steps:\n  - include: mail.yaml\n")
    code, _, err = run("validate", plan)
    assert code == 0
    assert err.splitlines()[0].startswith(f"{tmp_path / 'mail.yaml'}:2:22: warning: MAIL FROM without")
    assert err.splitlines()[-1] == f"    note: included from {plan}:2"


# --- options that would do nothing where they are given ------------------------------------------------------------

def test_profile_without_embedded_is_a_usage_error(tmp_path: Path) -> None:
    code, out, err = run(POSTFIX, "--host", "127.0.0.1", "--profile", "strict", "--no-report")
    assert (code, out) == (2, "")
    assert err == ("smtprun: --profile chooses the embedded server's answers: give it with --embedded "
                   "(or run `smtprun serve --profile ...`)\n")


def test_host_or_port_with_embedded_is_a_usage_error() -> None:
    code, out, err = run(POSTFIX, "--embedded", "--host", "127.0.0.1", "--port", "25", "--no-report")
    assert (code, out) == (2, "")
    assert err == ("smtprun: --host and --port cannot be given with --embedded: it runs the plans against the "
                   "embedded server on a free loopback port\n")


# --- a folder of plans ---------------------------------------------------------------------------------------------

def test_validate_takes_the_plans_folder() -> None:
    code, out, err = run("validate", str(ROOT / "plans"))
    assert (code, err) == (0, "")
    names = [line.split(": ok")[0] for line in out.splitlines()]
    assert names == sorted(str(p) for p in (ROOT / "plans").glob("*.yaml"))
    assert not any("common" in name for name in names)  # plans/common/ holds files to include


def test_a_folder_skips_bare_step_lists_and_a_plan_named_twice_runs_once(tmp_path: Path) -> None:
    write_plan(tmp_path, "steps:\n  - expect: 220\n", "b.yaml")
    write_plan(tmp_path, "name: first\nsteps:\n  - include: greeting.yaml\n", "a.yaml")
    write_plan(tmp_path, "# steps to include\n- expect: 220\n", "greeting.yaml")
    write_plan(tmp_path, "not a plan at all", "notes.txt")
    code, out, err = run("validate", str(tmp_path), str(tmp_path / "b.yaml"))
    assert (code, err) == (0, "")
    assert out == f"{tmp_path / 'a.yaml'}: ok (1 case)\n{tmp_path / 'b.yaml'}: ok (1 case)\n"


def test_a_folder_without_plans_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run("validate", str(tmp_path))
    assert (code, err) == (2, f"smtprun: {tmp_path}: no plans (*.yaml files) in this folder\n")


# --- steps that never ran ------------------------------------------------------------------------------------------

def test_a_case_skipped_by_when_shows_its_steps_rendered_as_far_as_the_plan_settles(tmp_path: Path) -> None:
    import json

    plan = write_plan(tmp_path, "vars: {helo: a.test}\ntarget: {host: 127.0.0.1, port: 9}\ncases:\n"
                                "  - when: 'false'\n    steps:\n      - send: 'EHLO {{ helo }}'\n"
                                "      - send: 'RCPT TO:<{{ rcpt }}> {{ helo|upper }}'\n")
    code, out, _ = run(plan, "--var", "rcpt=b@c.test", "--json", "-", "--no-report")
    steps = json.loads(out)["plans"][0]["cases"][0]["steps"]
    assert code == 0
    assert [s["sent"] for s in steps] == ["EHLO a.test", "RCPT TO:<b@c.test> A.TEST"]


def test_preview_keeps_what_only_a_running_case_knows() -> None:
    from runner.template import preview

    names = {"helo": "a.test", "ehlo": {}, "user": {"name": "bob"}}
    assert preview("EHLO {{ helo }} {{ queue }} {{user.name}} {{ user.x }}", names) == \
        "EHLO a.test {{ queue }} bob {{ user.x }}"
    assert preview("{{ helo|upper }} {{ queue }}", names) == "{{ helo|upper }} {{ queue }}"
    assert preview("NOOP", names) == "NOOP"


# --- help --------------------------------------------------------------------------------------------------------

def test_help_shows_the_main_form_and_its_options_first() -> None:
    code, out, err = run("--help")
    assert (code, err) == (0, "")
    assert out.startswith("usage: smtprun [run] PLAN|FOLDER ... [options]\n")
    for option in ("--host HOST[:PORT]", "--var NAME=VALUE", "--json FILE", "--embedded", "--report-dir DIR"):
        assert option in out
    assert out.index("--host") < out.index("other commands") < out.index("smtprun validate PLAN")


def test_smtprun_alone_shows_the_same_help_and_exits_2() -> None:
    code, out, err = run()
    assert (code, out) == (2, "")
    assert err == run("--help")[1]


def test_every_serve_option_has_help() -> None:
    out = " ".join(_help_of("serve").split())  # however wide the terminal
    assert "--host HOST the address to listen on (default 127.0.0.1, loopback only)" in out
    assert "--port PORT the port to listen on (default 2525)" in out


def _help_of(command: str) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):  # argparse prints a subcommand's help to sys.stdout
        assert run(command, "--help")[0] == 0
    return buffer.getvalue()


# --- the report folder -------------------------------------------------------------------------------------------

SKIPPED = "target: {host: 127.0.0.1, port: 9}\ncases:\n  - when: 'false'\n    steps:\n      - expect: 220\n"


def test_a_report_dir_that_is_a_file_says_not_a_directory(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, SKIPPED)
    code, out, err = run(plan, "--report-dir", "/etc/passwd")
    assert (code, out) == (2, "")  # refused before any session: a run is not spent on a report it cannot keep
    assert err == "smtprun: --report-dir /etc/passwd: cannot write there: not a folder\n"


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """A folder nobody may write in: immutable for root (who ignores modes), mode 555 for anyone else."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)


def test_a_read_only_report_dir_is_said_once_naming_the_folder(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, SKIPPED)
    reports = tmp_path / "reports"
    reports.mkdir()
    with read_only(reports):
        code, out, err = run(plan, "--report-dir", str(reports))
    assert (code, out) == (2, "")  # said once, before any session
    reason = "Operation not permitted" if os.geteuid() == 0 else "Permission denied"
    assert err == f"smtprun: --report-dir {reports}: cannot write there: {reason}\n"
