"""Odd files and odd servers found by fuzzing: each is a named error, never a hang or a traceback.

Plans name real FIFOs, symlink loops and /proc files; servers are tests/support/faults.py servers,
scripted to send exact bytes. Runs that could hang go through a subprocess with a time limit, so a
regression fails the test instead of stopping the suite.
"""

from __future__ import annotations

import html
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import ROOT, run, write_plan
from tests.support.faults import BANNER, FaultServer, Peer, converse

TIMEOUT = 2
ENVELOPE = """\
  - expect: 220
  - send: EHLO client.test
    expect: 250
  - send: "MAIL FROM:<a@client.test>"
    expect: 250
  - send: "RCPT TO:<b@faults.test>"
    expect: 250
  - send: DATA
    expect: 354
"""


def smtprun(*argv: str, limit: float = 30) -> tuple[int, str, float]:
    """`python -m runner ARGV` in a subprocess: exit status, stdout and stderr together, seconds taken."""
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "runner", *argv], cwd=ROOT, capture_output=True, text=True,
                              timeout=limit)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"smtprun {' '.join(argv)} still running after {limit}s: {exc.stdout!r} {exc.stderr!r}")
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def fifo(tmp_path: Path, name: str = "fifo") -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def loop(tmp_path: Path, name: str = "loop") -> Path:
    path = tmp_path / name
    path.symlink_to(name)
    return path


# --- 1. FIFOs never hang a run or a validation --------------------------------------------------------------

def test_a_templated_data_file_that_is_a_fifo_fails_its_step_at_once(tmp_path):
    fifo(tmp_path)
    with FaultServer("normal") as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: {TIMEOUT}, "
                                    "session_timeout: 5}\nvars: {f: fifo}\nsteps:\n" + ENVELOPE
                          + '  - data_file: "{{ f }}"\n    expect: 250\n')
        code, out, elapsed = smtprun(plan, "--no-report")
    assert code == 1, out
    assert f"why:      cannot read data_file {tmp_path}/fifo: a named pipe (FIFO), not a regular file" in out
    assert "Traceback" not in out and elapsed < TIMEOUT + 5


def test_a_cafile_that_is_a_fifo_fails_the_starttls_step_at_once(tmp_path):
    fifo(tmp_path, "ca.pem")

    def starttls(peer: Peer) -> None:
        peer.send(BANNER)
        converse(peer, special={"STARTTLS": b"220 2.0.0 go ahead\r\n"})

    with FaultServer(starttls) as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: {TIMEOUT}}}\n"
                                    f"steps:\n  - expect: 220\n  - send: EHLO client.test\n    expect: 250\n"
                                    f"  - starttls: {{cafile: {tmp_path}/ca.pem}}\n")
        code, out, elapsed = smtprun(plan, "--no-report")
    assert code == 1, out
    assert f"why:      cannot read cafile {tmp_path}/ca.pem: a named pipe (FIFO), not a regular file" in out
    assert elapsed < TIMEOUT + 5


def test_a_target_cafile_that_is_a_fifo_fails_the_case_at_once(tmp_path):
    fifo(tmp_path, "ca.pem")
    with FaultServer("normal") as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: {TIMEOUT}, "
                                    f"tls: implicit, cafile: {tmp_path}/ca.pem}}\nsteps:\n  - expect: 220\n")
        code, out, elapsed = smtprun(plan, "--no-report")
    assert code == 1, out
    assert f"cannot read cafile {tmp_path}/ca.pem: a named pipe (FIFO), not a regular file" in out
    assert elapsed < TIMEOUT + 5


def test_validate_refuses_a_fifo_as_plan_or_include_without_waiting(tmp_path):
    fifo(tmp_path, "plan-fifo.yaml")
    fifo(tmp_path, "part.yaml")
    plan = write_plan(tmp_path, "steps:\n  - include: part.yaml\n")
    code, out, elapsed = smtprun("validate", str(tmp_path / "plan-fifo.yaml"), plan)
    assert code == 2, out
    assert f"{tmp_path}/plan-fifo.yaml:1:1: error: cannot read plan: a named pipe (FIFO), not a regular file" in out
    # the include is named where it stands, as an included file, not as a plan
    assert f"{plan}:2:14: error: cannot read included file part.yaml: a named pipe (FIFO), not a regular file" in out
    assert elapsed < 10


# --- 3. includes stay in the plan's folder; no line of a file that is not a plan is shown --------------------

@pytest.mark.parametrize("target", ["/proc/self/environ", "/etc/hostname", "../outside.yaml"])
def test_an_include_outside_the_plan_folder_is_refused_and_not_read(tmp_path, target, monkeypatch):
    monkeypatch.setenv("SMTPRUN_TEST_CANARY", "canary-5e4d3c")  # in the child's /proc/self/environ
    (tmp_path / "outside.yaml").write_text("steps:\n  - send: NOOP canary-5e4d3c\n    bogus: 1\n")
    (tmp_path / "plans").mkdir()
    plan = write_plan(tmp_path / "plans", f"steps:\n  - include: {target}\n")
    code, err, _ = smtprun("validate", plan)
    assert code == 2
    assert err.startswith(f"{plan}:2:14: error: include {target} is outside the plan's folder: a plan may only "
                          "include files that sit beside it or below it\n      - include: ")
    assert "canary-5e4d3c" not in err


def test_an_include_that_is_not_yaml_shows_no_line_of_it(tmp_path):
    (tmp_path / "creds.env").write_text("TOKEN=hunter2-token\n\tPASSWORD: [unclosed\n")
    plan = write_plan(tmp_path, "steps:\n  - include: creds.env\n")
    code, _, err = run("validate", plan)
    assert code == 2
    assert f"{tmp_path}/creds.env:2:1: error: YAML syntax: " in err
    assert "hunter2" not in err and "PASSWORD" not in err and f"included from {plan}:2" in err


def test_an_include_that_is_not_a_mapping_shows_no_line_of_it(tmp_path):
    (tmp_path / "note.txt").write_text("the admin password is hunter2-note\n")
    plan = write_plan(tmp_path, "steps:\n  - include: note.txt\n")
    code, _, err = run("validate", plan)
    assert code == 2 and "note.txt:1:1: error: " in err
    assert "hunter2" not in err


# --- 4. no excerpt shows a literal password or a secret ------------------------------------------------------

SECRETS = ['Sup3r"S3cret\\PW', "it's-a\tTAB-pw", "pässwörd-€-ünï", "Hunter2Literal"]


def _yaml(value: str) -> str:
    """The value as a double-quoted YAML scalar."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") + '"'


@pytest.mark.parametrize("secret", SECRETS)
def test_a_literal_password_is_masked_on_the_line_of_a_plan_error(tmp_path, secret):
    plan = write_plan(tmp_path, "steps:\n  - expect: 220\n"
                                f"  - auth: {{mechanism: PLAN, username: alice, password: {_yaml(secret)}}}\n")
    code, _, err = run("validate", plan)
    assert code == 2
    assert err.startswith(f"{plan}:3:23: error: 'mechanism' must be one of: PLAIN, LOGIN, CRAM-MD5, XOAUTH2 "
                          '(got "PLAN")\n'
                          "      - auth: {mechanism: PLAN, username: alice, password: ***}\n"
                          "                          ^\n")
    assert secret not in err and _yaml(secret) not in err


@pytest.mark.parametrize("secret", SECRETS)
def test_a_variable_named_in_secrets_is_masked_even_when_the_plan_is_invalid(tmp_path, secret):
    plan = write_plan(tmp_path, f'vars: {{token: {_yaml(secret)}, helo: "{{{{ hel }}}}"}}\nsecrets: [token]\n'
                                "steps:\n  - send: EHLO {{ helo }}\n")
    code, _, err = run("validate", plan)
    assert code == 2
    assert err.startswith(f"{plan}:1:"), err
    assert "error: undefined variable 'hel'" in err
    assert "    vars: {token: ***, helo: " in err
    assert secret not in err and _yaml(secret)[1:-1] not in err


@pytest.mark.parametrize("secret", SECRETS)
def test_a_secret_from_the_command_line_is_masked_wherever_the_plan_spells_it(tmp_path, secret):
    plan = write_plan(tmp_path, f"steps:\n  - {{send: {_yaml('PASS ' + secret)}, bogus: 1}}\n")
    code, _, err = run("validate", plan, "--secret", f"pw={secret}")
    assert code == 2
    assert err.startswith(f"{plan}:2:{len(_yaml('PASS ' + secret)) + 14}: error: unknown key 'bogus' in step\n"
                          "      - {send: ***, bogus: 1}\n"
                          "                    ^\n"), err
    assert secret not in err and _yaml(secret)[1:-1] not in err


# --- 6. odd paths: plan errors at validation, named failures at run time ---------------------------------------

@pytest.mark.parametrize("key", ["include", "data_file"])
def test_a_nul_in_a_path_is_a_plan_error(tmp_path, key):
    plan = write_plan(tmp_path, f'steps:\n  - expect: 220\n  - {key}: "a\\0b"\n')
    code, _, err = run("validate", plan)
    assert code == 2
    assert err.startswith(f"{plan}:3:{7 + len(key)}: error: cannot read {key} a\\x00b: the path contains a NUL byte\n")


@pytest.mark.parametrize("key", ["include", "data_file"])
def test_a_symlink_loop_is_a_plan_error(tmp_path, key):
    loop(tmp_path)
    plan = write_plan(tmp_path, f"steps:\n  - expect: 220\n  - {key}: loop\n")
    code, _, err = run("validate", plan)
    assert code == 2
    assert err.startswith(f"{plan}:3:{7 + len(key)}: error: cannot read {key} loop: too many levels of symbolic "
                          "links (a symlink loop?)\n")


@pytest.mark.parametrize(("name", "why"), [
    ("loop", "cannot read data_file {folder}/loop: too many levels of symbolic links (a symlink loop?)"),
    ("a\\0b", "cannot read data_file {folder}/a\\x00b: the path contains a NUL byte"),
])
def test_a_templated_data_file_that_cannot_be_opened_fails_its_step_by_name(tmp_path, name, why):
    loop(tmp_path)
    with FaultServer("normal") as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: {TIMEOUT}}}\n"
                                    f'vars: {{f: "{name}"}}\nsteps:\n' + ENVELOPE
                          + '  - data_file: "{{ f }}"\n    expect: 250\n')
        code, out, _ = run(plan, "--no-report")
    assert code == 1, out
    assert "why:      " + why.format(folder=tmp_path) + "\n" in out
    assert "internal error" not in out


# --- 2. a secret echoed in a line that breaks the reply grammar is masked before it is escaped ------------------

def _forms(secret: str) -> set[str]:
    """The secret as each output could spell it: raw, Python-escaped, JSON-escaped, HTML/XML-escaped."""
    return {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
            html.escape(secret), html.escape(secret, quote=False), secret.replace("\\", "\\\\")} - {""}


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("shape", ["{s}", "5x5 {s}", "535{s}", "535\u202e {s}"], ids=["bare", "bad code",
                                                                                  "no separator", "bidi"])
def test_a_secret_echoed_in_a_broken_reply_is_masked_in_every_output(tmp_path, secret, shape):
    def echo_auth(peer: Peer) -> None:
        peer.send(BANNER)
        peer.read_line()  # AUTH PLAIN ...
        peer.send(shape.format(s=secret).encode() + b"\r\n")
        peer.read_line()

    with FaultServer(echo_auth) as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: {TIMEOUT}}}\n"
                                    "vars: {password: placeholder}\nsecrets: [password]\nsteps:\n  - expect: 220\n"
                                    "  - auth: {mechanism: PLAIN, username: alice, password: '{{ password }}'}\n")
        code, out, err = run(plan, "--secret", f"password={secret}", "--json", str(tmp_path / "r.json"),
                             "--junit", str(tmp_path / "r.xml"), "--report-dir", str(tmp_path / "html"))
    assert code == 1, out + err
    assert re.search(r"why:      protocol error: (not an SMTP reply line|reply code not followed by space, '-' or "
                     r"CRLF): '[^\n]*\*\*\*'\n", out), out
    reports = {p.name: p.read_text() for p in (tmp_path / "html").rglob("*.html")}
    outputs = {"console": out + err, "json": (tmp_path / "r.json").read_text(),
               "junit": (tmp_path / "r.xml").read_text(), **reports}
    assert len(outputs) > 3
    for name, text in outputs.items():
        for form in _forms(secret):
            assert form not in text, f"{name} shows the secret as {form!r}"



@pytest.mark.parametrize("secret", [*SECRETS, "L0ng-s3cret-" * 7])
def test_a_secret_in_the_command_after_unasked_bytes_is_masked(tmp_path, secret):
    def early(peer: Peer) -> None:
        peer.send(BANNER + b"250 2.0.0 early\r\n")
        peer.read_line()

    with FaultServer(early) as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: {TIMEOUT}}}\n"
                                    "vars: {password: x}\nsecrets: [password]\nsteps:\n  - expect: 220\n"
                                    "  - send: \"NOOP {{ password }}\"\n    expect: 250\n")
        code, out, err = run(plan, "--secret", f"password={secret}", "--no-report")
    assert code == 1
    assert "why:      the server sent 17 bytes that no command asked for, before 'NOOP ***'\n" in out
    assert not any(form in out + err for form in _forms(secret) | {secret[:24]})


def test_a_malformed_secret_option_is_refused_without_showing_it():
    code, _, err = run("validate", str(ROOT / "plans" / "exchange.yaml"), "--secret", 'Sup3r"S3cret')
    assert (code, err) == (2, "smtprun validate: argument --secret: expected NAME=VALUE (what was given is a "
                              "secret: not shown)\n")

# --- 7. a reply of a code and blanks is a reply ----------------------------------------------------------------

@pytest.mark.parametrize("banner", [b"220  \r\n", b"220 \t\r\n", b"220- \r\n220  \r\n"], ids=["spaces", "tab",
                                                                                           "multiline"])
def test_a_banner_of_a_code_and_blanks_passes_expect_220(tmp_path, banner):
    def blank(peer: Peer) -> None:
        peer.send(banner)
        converse(peer)

    with FaultServer(blank) as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: {TIMEOUT}}}\n"
                                    "steps:\n  - expect: 220\n")
        code, out, err = run(plan, "--no-report")
    assert code == 0, out + err
    assert "1 passed" in out and "internal error" not in out + err


def test_an_ehlo_reply_of_a_code_and_blanks_is_judged(tmp_path):
    def blank(peer: Peer) -> None:
        peer.send(BANNER)
        converse(peer, special={"EHLO": b"250  \r\n"})

    with FaultServer(blank) as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: {TIMEOUT}}}\n"
                                    "steps:\n  - expect: 220\n  - send: EHLO client.test\n    expect: 250\n"
                                    "  - send: QUIT\n    expect: 221\n")
        code, out, err = run(plan, "--no-report")
    assert code == 0, out + err
    assert "1 passed" in out


# --- 8. one host-name rule for the command line, plans and the recorder ----------------------------------------

BAD_HOSTS = {
    ".": "not a host name: '.'",
    "\u202e": "not a host name: '\\u202e' contains '\\u202e'",
    "x" * 300: "not a host name: label 1 of '" + "x" * 80 + "...' is 300 characters, over 63 (RFC 1035 §2.3.4)",
    "mail..example.com": "not a host name: 'mail..example.com' has an empty label",
    "a\tb": "not a host name: 'a\\tb' contains '\\t'",
}


@pytest.mark.parametrize("host", BAD_HOSTS, ids=["root", "bidi", "long label", "empty label", "tab"])
def test_record_refuses_a_bad_host_name_in_one_line(tmp_path, host):
    code, out, _ = smtprun("record", host, "-o", str(tmp_path / "new.yaml"))
    assert code == 2
    assert out == f"smtprun record: argument HOST[:PORT]: {BAD_HOSTS[host]}\n"
    assert not (tmp_path / "new.yaml").exists()


@pytest.mark.parametrize("host", BAD_HOSTS, ids=["root", "bidi", "long label", "empty label", "tab"])
def test_run_and_plans_refuse_a_bad_host_name_in_the_same_words(tmp_path, host):
    code, _, err = run(str(ROOT / "plans" / "exchange.yaml"), "--host", host, "--no-report")
    assert (code, err) == (2, f"smtprun run: argument --host: {BAD_HOSTS[host]}\n")
    plan = write_plan(tmp_path, f"target: {{host: {json.dumps(host)}}}\nsteps:\n  - expect: 220\n")
    code, _, err = run("validate", plan)
    assert code == 2
    assert err.startswith(f"{plan}:1:16: error: {BAD_HOSTS[host]}\n")


def test_a_templated_host_that_renders_to_a_bad_name_fails_the_case_by_name(tmp_path):
    plan = write_plan(tmp_path, 'vars: {h: "mail..example.com"}\ntarget: {host: "{{ h }}", port: 25, timeout: 2}\n'
                                "steps:\n  - expect: 220\n")
    code, out, err = run(plan, "--no-report")
    assert code == 1, out + err
    assert "not a host name: 'mail..example.com' has an empty label" in out
    assert "internal error" not in out + err


# --- 9. timeouts that read back, reports that can be written -----------------------------------------------------

@pytest.mark.parametrize("timeout", ["1e-320", "0", "nan", "inf", "86401"])
def test_record_refuses_an_absurd_timeout(tmp_path, timeout):
    code, out, _ = smtprun("record", "127.0.0.1:1", "--timeout", timeout, "-o", str(tmp_path / "new.yaml"))
    assert code == 2
    assert out == f"smtprun record: argument --timeout: must be between 0.001 and 86400 seconds: {timeout}\n"


@pytest.mark.parametrize("timeout", [1e-05, 2.5e-4, 1.5, 0.001])
def test_a_written_plan_reads_its_timeout_back_as_a_number(tmp_path, timeout):
    from runner.plan import read_plan
    from runner.plan.write import RecordedStep, plan_text

    text = plan_text([RecordedStep({"expect": 220})], "127.0.0.1:25", {"host": "127.0.0.1", "timeout": timeout})
    plan = read_plan(write_plan(tmp_path, text))
    assert plan.target.timeout == timeout


def test_record_writes_a_plan_whose_timeout_validates(tmp_path):
    with FaultServer("normal") as server:
        proc = subprocess.run([sys.executable, "-m", "runner", "record", f"127.0.0.1:{server.port}", "--timeout",
                               "0.75", "-o", str(tmp_path / "new.yaml")], input="NOOP\n/quit\n", cwd=ROOT,
                              capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "  timeout: 0.75\n" in (tmp_path / "new.yaml").read_text()
    assert run("validate", str(tmp_path / "new.yaml"))[0] == 0


@pytest.mark.parametrize(("flag", "where", "why"), [
    ("--json", "{tmp}", "a folder, not a file name"),
    ("--junit", "{tmp}/missing/r.xml", "its folder {tmp}/missing does not exist"),
    ("--json", "/proc/r.json", "No such file or directory"),
    ("--report-dir", "{tmp}/plan.yaml", "not a folder"),
])
def test_an_output_that_cannot_be_written_is_refused_before_connecting(tmp_path, flag, where, why):
    where = where.format(tmp=tmp_path)
    with FaultServer("normal") as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: {TIMEOUT}}}\n"
                                    "steps:\n  - expect: 220\n")
        code, out, err = run(plan, flag, where)
        accepted = server.accepted
    assert (code, accepted) == (2, 0), out + err
    assert err == f"smtprun: {flag} {where}: cannot write there: {why.format(tmp=tmp_path)}\n"


# --- 5. rendered output is bounded per run, not per template ----------------------------------------------------

BIG_RAW = "  - raw: \"{% for i in range(60) %}{{ 'a' * 1000000 }}{% endfor %}\"\n"  # 60 M characters


def _peak_rss_mib(*argv: str) -> tuple[int, float, str]:
    """`python -m runner ARGV`: exit status, its own peak RSS in MiB (wait4), its output."""
    proc = subprocess.Popen([sys.executable, "-m", "runner", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, out.decode()


def test_a_matrix_does_not_multiply_the_memory_of_a_large_rendered_body(tmp_path):
    """Measured: matrix 8 peaked at 1008 MiB and 16 at 1924 MiB before (each case's 60 M characters at once);
    now the run's budget bounds the large bodies alive at once, whatever the number of cases."""
    def sink(peer: Peer) -> None:
        peer.send(BANNER)
        peer.hold()

    peaks = {}
    with FaultServer(sink) as server:
        for n in (1, 16):
            plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: 30}}\n"
                                        f"matrix: {{n: {list(range(n))}}}\nsteps:\n  - expect: 220\n{BIG_RAW}"
                                        "  - close: true\n", f"m{n}.yaml")
            code, peaks[n], out = _peak_rss_mib(plan, "--no-report")
            assert code == 0, out
            assert f"{n} passed" in out
    # The run's budget (128 Mi characters) lets two such 60 M bodies be alive at once, each with its encoded
    # bytes: a run of 16 may hold about twice what one case holds, never sixteen times (before: 9 times).
    assert peaks[16] < 3 * peaks[1], peaks


def test_variables_are_bounded_all_together(tmp_path):
    big = "\"{{ 'v' * 1000000 }}\""
    plan = write_plan(tmp_path, "vars:\n" + "".join(f"  v{i}: {big}\n" for i in range(6)) + "steps:\n  - expect: 220\n")
    code, _, err = run("validate", plan)
    assert code == 2
    assert f"{plan}:6:7: error: vars.v4: with the variables before it, it renders to more than " in err


def test_plain_substitution_is_bounded_like_any_template(tmp_path):
    plan = write_plan(tmp_path, "vars: {a: \"{{ 'x' * 1000000 }}\"}\nsteps:\n  - expect: 220\n"
                                "  - send: \"" + "{{ a }}" * 100 + "\"\n")
    code, _, err = run("validate", plan)
    assert code == 2
    assert f"{plan}:4:11: error: template renders to more than {64 * 1024 * 1024} characters\n" in err


# --- a server that hangs up right after its 220 to STARTTLS ------------------------------------------------------

def test_a_hang_up_after_the_starttls_220_is_a_failed_step_with_nothing_past_the_console(tmp_path):
    def hang_up(peer: Peer) -> None:
        peer.send(BANNER)
        peer.read_line()
        peer.send(b"250-faults.test\r\n250 STARTTLS\r\n")
        peer.read_line()
        peer.send(b"220 2.0.0 go ahead\r\n")
        peer.sock.shutdown(socket.SHUT_RDWR)

    with FaultServer(hang_up) as server:
        plan = write_plan(tmp_path, f"target: {{host: 127.0.0.1, port: {server.port}, timeout: {TIMEOUT}}}\n"
                                    "steps:\n  - expect: 220\n  - send: EHLO client.test\n    expect: 250\n"
                                    "  - starttls: {verify: false}\n")
        for _ in range(5):  # the close races the handshake: a few tries meet both orders
            code, out, _ = smtprun(plan, "--no-report")
            assert code == 1
            assert re.search(r"why:      TLS handshake failed: the server closed the connection (before|during) the "
                             r"TLS handshake(, without a TLS alert)?\n", out), out
            assert "Traceback" not in out and "Exception in callback" not in out, out
