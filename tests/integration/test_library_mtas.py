"""Every plan of the library against Postfix, Exim and OpenSMTPD: each passes, or fails where and why the
server really answers otherwise (tests/support/mtas.py; MTA-NOTES "How they answer"); the smuggling plan
against all seven test servers (Sendmail, Courier, qpsmtpd and Haraka too), ending by ending.

Plans run as a user runs them: the command line in-process, with the local recipient and sender, the test
CA and the password given on it, and the JSON report read back. A server that does not answer skips its
tests, or fails them when CI is set.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from runner.plan import read_plan
from tests.support.cli import ROOT, run
from tests.support.mtas import (
    ALL_SMTP_SERVERS,
    CA_PATH,
    COURIER,
    EXIM,
    HARAKA,
    HOSTNAME,
    OPENSMTPD,
    POSTFIX,
    QPSMTPD,
    SENDMAIL,
    SMTP_SERVERS,
    USERS,
    SmtpServer,
    require_smtp,
)

pytestmark = pytest.mark.timeout(120)

by_server = pytest.mark.parametrize("server", SMTP_SERVERS, ids=[s.name for s in SMTP_SERVERS])
GENERIC = ("exchange", "open-relay", "starttls")  # pass on every server as they are
OWN_PLAN = {POSTFIX.name: "postfix", EXIM.name: "exim", OPENSMTPD.name: "opensmtpd"}
SMUGGLING_ENDINGS = ("<LF>.<LF>", "<CR>.<CR>", "<CR>.<LF>", "<LF>.<CR>", "<LF>.<CR><LF>", "<CR><LF>.<LF>",
                     "<CR>.<CR><LF>", "<CR><LF><NUL>.<CR><LF>", "<CR><LF>.<CR><CR><LF>")
# Measured (docs/plan-library.md "SMTP smuggling"): the endings each server takes as the end of the data,
TAKEN = {
    POSTFIX.name: {"<LF>.<LF>", "<LF>.<CR><LF>", "<CR><LF>.<LF>", "<CR><LF>.<CR><CR><LF>"},  # stock 3.7
    EXIM.name: set(),  # Debian's 4.96, with the fix
    OPENSMTPD.name: {"<LF>.<LF>", "<LF>.<CR><LF>", "<CR><LF>.<LF>"},  # 7.4.0
    SENDMAIL.name: set(),  # Debian's 8.17.1.9, with the 2024 fix
    COURIER.name: set(),
    QPSMTPD.name: {"<LF>.<CR><LF>"},  # 0.94 ends the data at ".<CR><LF>" whatever came before
    HARAKA.name: set(),
}
# and those it refuses (a 4xx or 5xx before the real end, and a close); every other is one message.
REFUSED = {
    SENDMAIL.name: set(SMUGGLING_ENDINGS),  # 421 4.5.0 bare LF / bare CR, 554 5.6.1 NUL
    QPSMTPD.name: {"<LF>.<LF>", "<CR><LF>.<LF>"},  # 421 for a bare LF after a CRLF
    HARAKA.name: {"<LF>.<LF>", "<CR>.<LF>", "<LF>.<CR>", "<LF>.<CR><LF>", "<CR><LF>.<LF>"},  # 451 Bare line-feed
}
every_server = pytest.mark.parametrize("server", ALL_SMTP_SERVERS, ids=[s.name for s in ALL_SMTP_SERVERS])


def run_plan(name: str, server: SmtpServer, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    """The plan against the server as a mail admin runs it: (exit status, cases by name, console output).
    `extra` arguments replace --host HOST:PORT when they give --port (an MX plan finds its host in DNS)."""
    report = tmp_path / f"{name}-{server.name}.json"
    where = () if "--port" in extra else ("--host", f"{server.host}:{server.port}")
    path = ROOT / "plans" / f"{name}.yaml"
    declared = read_plan(path).vars  # a --var no plan reads is refused: give each plan what it declares
    given = {"rcpt": "alice@smtprun.test", "sender": "bob@smtprun.test", "cafile": str(CA_PATH)}
    options = [f"--var={k}={v}" for k, v in given.items() if k in declared]
    if "password" in declared:
        options.append(f"--secret=password={USERS['alice']}")
    code, out, err = run(str(path), *where, *options, "--json", str(report), "--no-report", *extra)
    assert report.exists(), out + err
    cases = {c["name"]: c for c in json.loads(report.read_text())["plans"][0]["cases"]}
    return code, cases, out + err


def failing(cases: dict[str, Any]) -> dict[str, str]:
    return {name: case["reason"] for name, case in cases.items() if case["status"] != "passed"}


@by_server
@pytest.mark.parametrize("plan", GENERIC)
def test_generic_plans_pass_on_every_server(server, plan, tmp_path):
    require_smtp(server)
    code, cases, out = run_plan(plan, server, tmp_path)
    assert code == 0 and not failing(cases), out


@by_server
def test_submission_auth_passes_where_auth_is_offered_and_names_its_absence_on_postfix(server, tmp_path):
    require_smtp(server)
    code, cases, out = run_plan("submission-auth", server, tmp_path)
    if server.auth:
        assert code == 0 and not failing(cases), out
        assert USERS["alice"] not in out
        return
    # Postfix on :25 has no SASL: every case stops at the EHLO after STARTTLS, which offers no AUTH
    assert code == 1 and len(failing(cases)) == len(cases) == 3
    for reason in failing(cases).values():
        assert "EHLO keywords missing: AUTH (offered: PIPELINING" in reason, reason


@by_server
def test_each_mta_plan_passes_on_its_own_server_and_stops_at_the_banner_elsewhere(server, tmp_path):
    require_smtp(server)
    for software, plan in OWN_PLAN.items():
        code, cases, out = run_plan(plan, server, tmp_path)
        if software == server.name:
            assert code == 0 and not failing(cases), out
            continue
        assert code == 1
        banner = cases["banner and EHLO keywords"]
        assert banner["status"] == "failed"
        assert banner["reason"].startswith(f"step 1 ({ROOT}/plans/{plan}.yaml:")
        assert f"got 220 {HOSTNAME} ESMTP {server.software}" in banner["reason"]


@every_server
def test_smuggling_verdicts_are_what_each_server_does(server, tmp_path):
    require_smtp(server)
    code, cases, out = run_plan("smuggling", server, tmp_path)
    assert set(cases) == set(SMUGGLING_ENDINGS)
    taken, refused = TAKEN[server.name], REFUSED.get(server.name, set())
    for name, case in cases.items():
        (step,) = [s for s in case["steps"] if s["action"] == "smuggle"]
        if name in taken:
            assert case["status"] == step["status"] == "failed", name
            assert step["verdict"].startswith("vulnerable: the server answered the smuggled MAIL FROM (250 "), name
            assert f"it took {name} as the end of the data (250 " in step["verdict"]
            assert case["reason"].endswith(step["verdict"]) and step["reason"] == step["verdict"]
            # the console names the finding; the reply it quotes is on the got: line above
            assert f"why:      vulnerable: the server answered the smuggled MAIL FROM (250): it took {name} " in out
            assert case["steps"][-1]["status"] == "passed"  # QUIT, under finally:, met its 221
        elif name in refused:
            assert case["status"] == "passed", (name, case["reason"])
            assert step["verdict"].startswith("refused: the server answered 4") or \
                step["verdict"].startswith("refused: the server answered 5"), (name, step["verdict"])
        else:
            assert case["status"] == "passed", (name, case["reason"])
            assert step["verdict"].startswith("not vulnerable: the whole text was taken as one message (250 "), name
            assert f"verdict: {step['verdict']}" in out
    assert code == (1 if taken else 0)


@by_server
def test_domain_mx_passes_for_every_server_as_the_mx(server, tmp_path, dnsmasq_factory):
    require_smtp(server)
    dns = dnsmasq_factory(f"--mx-host=smtprun.test,{HOSTNAME},10", f"--host-record={HOSTNAME},127.0.0.1",
                          "--txt-record=smtprun.test,v=spf1 mx -all",
                          "--txt-record=_dmarc.smtprun.test,v=DMARC1; p=reject")
    code, cases, out = run_plan("domain-mx", server, tmp_path, "--var", "domain=smtprun.test",
                                "--nameserver", f"{dns.host}:{dns.port}", "--port", str(server.port))
    assert code == 0 and not failing(cases), out
    assert all(f"connected to MX {HOSTNAME} (preference 10) at 127.0.0.1:{server.port}" in c["notes"]
               for c in cases.values())


PIECES = """\
target: {{host: 127.0.0.1, port: {port}, timeout: 10}}
vars: {{rcpt: alice@smtprun.test}}
steps:
  - include: {envelope}
    vars: {{sender: bob@smtprun.test}}
  - raw: {raw}
    timeout: 5
  - expect: {first}
"""


ONE_WRITE = '"Subject: one write\\r\\n\\r\\nfirst\\n.\\nMAIL FROM:<admin@smtprun.test>\\r\\n"'
IN_PIECES = '["Subject: in pieces\\r\\n\\r\\nfirst\\n.\\n", {pause: 0.3}, "MAIL FROM:<admin@smtprun.test>\\r\\n"]'


@pytest.mark.parametrize(("raw", "first", "rest"), [
    # the fake ending and the smuggled MAIL FROM in one write: refused, and the connection closed
    (ONE_WRITE, {"code": 500, "text": "Pipelining not supported"}, "  - expect: closed\n"),
    # the same bytes in two writes with a pause: the fake ending ends the message, the smuggled MAIL FROM is taken
    (IN_PIECES, {"code": 250, "text": "accepted"}, "  - expect: {code: 250, enhanced: 2.0.0}\n  - send: QUIT\n"
                                                   "    expect: 221\n"),
], ids=["one write", "in pieces"])
def test_opensmtpd_shows_the_weakness_only_when_the_bytes_come_in_pieces(raw, first, rest, tmp_path):
    server = require_smtp(OPENSMTPD)
    shutil.copy(ROOT / "plans/common/envelope.yaml", tmp_path)  # an include stays in the plan's folder
    text = PIECES.format(port=server.port, envelope="envelope.yaml", raw=raw,
                         first=json.dumps(first)) + rest
    plan = tmp_path / "pieces.yaml"
    plan.write_text(text)
    code, out, err = run(str(plan), "--no-report", "-v")
    assert code == 0, out + err
    assert "  C: first\\n\n  C: .\\n\n  C: MAIL FROM:<admin@smtprun.test>\n" in out  # -v shows the bare LFs
