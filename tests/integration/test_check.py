"""`smtprun check`: its output read as Nagios/Icinga read it, against the real Postfix and a dead port."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509

from runner.tools.server import EmbeddedServer, ServerTls, server_tls_context
from tests.support.certs import chain_server
from tests.support.cli import run, write_plan
from tests.support.mailplans import send_plan
from tests.support.monitoring import dead_port, parse_check
from tests.support.mtas import DOVECOT, require_dovecot

STARTTLS_PLAN = """\
name: smoke
target: {host: 127.0.0.1, port: 25, timeout: 5}
steps:
  - expect: 220
  - send: EHLO smtprun.test
    expect: 250
  - starttls: {cafile: /etc/smtprun-test/ca.pem}
  - send: EHLO smtprun.test
    expect: 250
  - send: QUIT
    expect: 221
"""


@pytest.fixture
def plan(tmp_path, postfix):
    return write_plan(tmp_path, STARTTLS_PLAN)


def test_ok_against_postfix_with_time_and_certificate_perfdata(plan):
    code, out, err = run("check", plan)
    check = parse_check(out)
    assert (code, check.status, err) == (0, "OK", "")
    assert check.text.startswith("SMTP OK - 5/5 steps in ")
    assert check.long == []
    time = check.perf["time"]
    assert (time.unit, time.minimum) == ("s", "0")
    assert 0 < time.value < 5
    days = check.perf["cert_days"]
    assert days.value > 30 and days.value == int(days.value)
    assert (days.warning, days.critical) == ("30:", "7:")
    assert check.perf["days_chain_elem1"] == days  # Postfix sends its own certificate only
    assert "days_chain_elem2" not in check.perf


def test_dead_port_is_critical_with_the_reason_below(plan):
    with dead_port() as port:
        code, out, _ = run("check", plan, "--port", str(port))
    check = parse_check(out)
    assert (code, check.status) == (2, "CRITICAL")
    assert check.text == (f"SMTP CRITICAL - 0/5 steps in {check.perf['time'].value:.2f}s: "
                          f"smoke: cannot connect to 127.0.0.1:{port}: Connection refused")
    assert check.long == [f"smoke: cannot connect to 127.0.0.1:{port}: Connection refused"]  # no step ran
    assert "cert_days" not in check.perf


@pytest.mark.parametrize(("options", "code", "status", "note"), [
    (("-w", "@0:100"), 1, "WARNING", "run time {t}s (warning @0:100)"),
    (("-w", "@0:100", "-c", "~:0"), 2, "CRITICAL", "run time {t}s (critical ~:0)"),
    (("-w", "100"), 0, "OK", None),
    (("--cert-warning", "100000:"), 1, "WARNING", "certificate expires in {d} days (warning 100000:)"),
    (("--cert-critical", "@0:100000"), 2, "CRITICAL", "certificate expires in {d} days (critical @0:100000)"),
])
def test_thresholds_in_the_plugins_range_syntax(plan, options, code, status, note):
    got, out, _ = run("check", plan, *options)
    check = parse_check(out)
    assert (got, check.status) == (code, status)
    t, d = check.perf["time"].value, int(check.perf["cert_days"].value)
    expected = f"SMTP {status} - 5/5 steps in {t:.2f}s" + (": " + note.format(t=f"{t:g}", d=d) if note else "")
    assert check.text == expected
    if "-w" in options:
        assert check.perf["time"].warning == options[options.index("-w") + 1]


def test_a_wrong_reply_is_critical_and_shows_what_came(tmp_path, postfix):
    plan = write_plan(tmp_path, """\
name: unknown user
target: {host: 127.0.0.1, port: 25, timeout: 5}
steps:
  - expect: 220
  - send: EHLO smtprun.test
    expect: 250
  - send: "MAIL FROM:<a@example.com>"
    expect: 250
  - send: "RCPT TO:<nosuchuser@localhost>"
    expect: 250
  - send: QUIT
    expect: 221
""")
    code, out, _ = run("check", plan)
    check = parse_check(out)
    assert (code, check.status) == (2, "CRITICAL")
    assert check.text.startswith("SMTP CRITICAL - 3/5 steps in ")
    assert check.long[0] == f"unknown user: step 4 at {plan}:9: RCPT TO:<nosuchuser@localhost>"
    assert check.long[1] == "  expected: 250"
    assert check.long[2].startswith("  got: 550 5.1.1 <nosuchuser@localhost>: Recipient address rejected")


def test_a_plan_error_is_unknown_with_its_line_never_critical(tmp_path):
    plan = write_plan(tmp_path, 'target: {host: 127.0.0.1}\nsteps:\n  - send: "EHLO {{ nope }}"\n    expect: 250\n')
    code, out, _ = run("check", plan)
    check = parse_check(out)
    assert (code, check.status) == (3, "UNKNOWN")
    assert check.text == f"SMTP UNKNOWN - {plan}:3:11: error: undefined variable 'nope'"
    assert check.perf == {}


@pytest.mark.parametrize(("argv", "text"), [
    (("-w", "1x"), "argument -w/--warning: not a threshold range: '1x' (expected N, N:, ~:N, N:M or @N:M)"),
    (("-c", "5:1"), "argument -c/--critical: threshold range '5:1' starts above its end"),
    (("--port", "0"), "argument -p/--port: not a TCP port: '0'"),
])
def test_bad_options_are_unknown(tmp_path, argv, text):
    code, out, _ = run("check", write_plan(tmp_path, STARTTLS_PLAN), *argv)
    assert (code, out) == (3, f"SMTP UNKNOWN - {text}\n")


def test_missing_plan_is_unknown(tmp_path):
    code, out, _ = run("check", str(tmp_path / "nope.yaml"))
    assert code == 3
    assert out.startswith(f"SMTP UNKNOWN - {tmp_path / 'nope.yaml'}:1:1: error: cannot read plan")


def test_secrets_stay_out_of_the_output(tmp_path, postfix):
    plan = write_plan(tmp_path, """\
target: {host: 127.0.0.1, port: 25, timeout: 5}
steps:
  - expect: 220
  - send: "EHLO {{ token }}"
    expect: 354
""")
    code, out, _ = run("check", plan, "--secret", "token=s3cr3t-tok3n.example")
    assert code == 2
    assert "s3cr3t-tok3n" not in out
    assert "EHLO ***" in out


def test_a_delivery_check_gives_the_delivery_time_as_perfdata(tmp_path, postfix):
    require_dovecot(DOVECOT)
    plan = write_plan(tmp_path, send_plan(f"""\
  - expect_delivery:
      mailbox: maildir:{DOVECOT.maildir("alice")}
      within: 15
      delete: true
"""))
    code, out, err = run("check", plan)
    check = parse_check(out)
    assert (code, check.status, err) == (0, "OK", ""), out
    delivery = check.perf["delivery"]
    assert delivery.unit == "s" and delivery.minimum == "0"
    assert 0 <= delivery.value < min(15, check.perf["time"].value + 0.01)


def test_a_var_the_plan_does_not_read_is_unknown_as_for_run(tmp_path):
    code, out, _ = run("check", write_plan(tmp_path, STARTTLS_PLAN), "--var", "nope=1", "--secret", "tokn=x")
    assert code == 3
    assert out.splitlines()[0].startswith("SMTP UNKNOWN - --var nope: no variable 'nope' in ")
    assert out.splitlines()[1].startswith("--secret tokn: no variable 'tokn' in ")


def test_the_timeout_bounds_the_whole_check_not_each_case(tmp_path, postfix):
    cases = "".join(f"  - name: c{i}\n    steps: [{{expect: 220}}, {{sleep: 0.7}}, {{send: QUIT, expect: 221}}]\n"
                    for i in range(3))
    plan = write_plan(tmp_path, "sequential: true\ntarget: {host: 127.0.0.1, port: 25, timeout: 5}\ncases:\n" + cases)
    code, out, _ = run("check", plan, "-t", "1")
    check = parse_check(out)
    assert (code, check.status) == (2, "CRITICAL")
    assert check.text.endswith(": timed out after 1s (-t)")
    assert 1 <= check.perf["time"].value < 1.5


CHAIN_PLAN = """\
target: {{host: 127.0.0.1, port: {port}, timeout: 5}}
steps:
  - expect: 220
  - send: EHLO smtprun.test
    expect: 250
  - starttls: {{cafile: "{ca}"}}
  - send: QUIT
    expect: 221
"""


def check_chain(tmp_path, leaf_not_after, *options):
    """`smtprun check` of a server that sends its certificate and the intermediate CA: the check and the days
    left of each certificate sent, as cryptography reads them."""
    pem, ca, ders = chain_server(tmp_path, leaf_not_after)
    now = datetime.now(timezone.utc)
    days = [(x509.load_der_x509_certificate(der).not_valid_after_utc - now).days for der in ders]
    with EmbeddedServer(tls=ServerTls(server_tls_context(str(pem)))) as server:
        code, out, _ = run("check", write_plan(tmp_path, CHAIN_PLAN.format(port=server.port, ca=ca)), *options)
    return code, parse_check(out), days


def test_each_certificate_sent_has_its_days_left_and_the_earliest_warns(tmp_path):
    """As check_ssl_cert: days_chain_elem1 (the server's own), days_chain_elem2 (the intermediate), each with the
    thresholds; the status judged on the earliest of them."""
    code, check, days = check_chain(tmp_path, datetime.now(timezone.utc) + timedelta(days=10, hours=1))
    assert [check.perf[f"days_chain_elem{n}"].value for n in (1, 2)] == days and days[0] == 10
    assert (check.perf["days_chain_elem2"].warning, check.perf["days_chain_elem2"].critical) == ("30:", "7:")
    assert (code, check.status, check.perf["cert_days"].value) == (1, "WARNING", 10)
    assert check.text.endswith(": certificate expires in 10 days (warning 30:)")


def test_an_intermediate_expiring_first_is_named(tmp_path):
    code, check, days = check_chain(tmp_path, datetime(3000, 6, 1, tzinfo=timezone.utc), "--cert-warning",
                                    "400000:")
    assert days[1] < days[0] and check.perf["cert_days"].value == days[1]
    assert (code, check.status) == (1, "WARNING")
    assert ": certificate 2 of the chain (OU=Testing CA #" in check.text
    assert check.text.endswith(f") expires in {days[1]} days (warning 400000:)")
