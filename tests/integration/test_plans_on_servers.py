"""Plan-side warnings and command-line checks, against the real servers whose behaviour they are about."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import ROOT, run, write_plan
from tests.support.mtas import EXIM, OPENSMTPD, POSTFIX, require_smtp

UNBRACKETED = """\
steps:
  - expect: 220
  - send: EHLO client.smtprun.test
    expect: 250
  - send: "MAIL FROM:alice@smtprun.test"
    expect: 250
  - send: QUIT
    expect: 221
"""


@pytest.mark.parametrize(("server", "code", "reply"), [
    (OPENSMTPD, 1, "S! 553 5.1.0 Sender address syntax error"),  # strict: refuses it
    (EXIM, 0, "S: 250 OK"),  # lenient: takes it, and the warning stands
], ids=["opensmtpd", "exim"])
def test_an_unbracketed_sender_is_warned_of_and_sent_as_written(tmp_path: Path, server, code: int,
                                                               reply: str) -> None:
    require_smtp(server)
    plan = write_plan(tmp_path, UNBRACKETED)
    out_code, out, err = run(plan, "--host", f"{server.host}:{server.port}", "-v", "--no-report")
    assert err.splitlines()[:4] == [
        f"{plan}:5:22: warning: MAIL FROM without angle brackets: a strict server answers "
        '553 5.1.0 or 501 5.1.7 (RFC 5321 §4.1.2 wants "<" path ">")',
        '      - send: "MAIL FROM:alice@smtprun.test"',
        "                         ^",
        "    hint: write MAIL FROM:<alice@smtprun.test>; smtprun sends the line as written"]
    assert "C: MAIL FROM:alice@smtprun.test" in out and reply in out
    assert out_code == code, out + err


def test_a_folder_of_plans_runs_every_plan_in_it(tmp_path: Path) -> None:
    server = require_smtp(POSTFIX)
    write_plan(tmp_path, "name: banner\nsteps:\n  - expect: {code: 220, text: Postfix}\n", "banner.yaml")
    write_plan(tmp_path, "name: quit\nsteps:\n  - expect: 220\n  - send: QUIT\n    expect: 221\n", "quit.yaml")
    write_plan(tmp_path, "- send: NOOP\n  expect: 250\n", "fragment.yaml")
    code, out, err = run(str(tmp_path), "--host", f"{server.host}:{server.port}", "--no-report")
    assert code == 0, out + err
    assert "banner.yaml · banner" in out and "quit.yaml · quit" in out and "2 passed" in out
    assert "fragment" not in out


NEVER_RAN = """\
name: never ran
vars: {helo: client.smtprun.test, token: s3cr3t-token}
secrets: [token]
matrix:
  who: [alice]
cases:
  - name: wrong banner
    steps:
      - expect: 554
      - send: "EHLO {{ helo }}"
      - send: "XCLIENT LOGIN={{ who }} TOKEN={{ token }}"
      - send: NOOP
        capture: {queue: '(\\\\S+)'}
      - send: "NOOP {{ queue }} {{ env.HOME }} {{ helo }}"
"""


def test_steps_that_never_ran_show_what_they_would_send(tmp_path: Path) -> None:
    """A case that fails at the banner: the JSON and HTML reports label the steps after it with their
    templates rendered as far as the plan settles them; captures and env stay as written, secrets hidden."""
    import json

    server = require_smtp(POSTFIX)
    plan = write_plan(tmp_path, NEVER_RAN)
    code, out, err = run(plan, "--host", f"{server.host}:{server.port}", "--json", str(tmp_path / "r.json"),
                         "--report-dir", str(tmp_path / "html"))
    assert code == 1, out + err
    steps = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"][0]["steps"]
    assert [(s["status"], s["sent"]) for s in steps] == [
        ("failed", "read a reply"),
        ("skipped", "EHLO client.smtprun.test"),
        ("skipped", "XCLIENT LOGIN=alice TOKEN=***"),
        ("skipped", "NOOP"),
        ("skipped", "NOOP {{ queue }} {{ env.HOME }} client.smtprun.test"),
    ]
    (report,) = (tmp_path / "html").glob("plan-*.html")
    html = report.read_text()
    assert '<td class="t">EHLO client.smtprun.test</td>' in html
    assert '<td class="t">XCLIENT LOGIN=alice TOKEN=***</td>' in html and "s3cr3t-token" not in html


def test_json_gives_certificate_dates_in_iso_8601(tmp_path: Path) -> None:
    """Against Postfix's STARTTLS: tls.not_before and tls.not_after are ISO 8601 UTC, the certificate's own."""
    import json
    import smtplib
    import ssl
    from datetime import datetime, timezone

    server = require_smtp(POSTFIX)
    context = ssl.create_default_context(cafile=str(server.ca_path))
    with smtplib.SMTP(server.host, server.port, timeout=10) as smtp:
        smtp.starttls(context=context)
        cert = smtp.sock.getpeercert()  # type: ignore[union-attr]

    def iso(openssl_time: str) -> str:
        moment = datetime.fromtimestamp(ssl.cert_time_to_seconds(openssl_time), timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    code, out, err = run(str(ROOT / "plans/starttls.yaml"), "--host", f"{server.host}:{server.port}",
                         "--var", f"cafile={server.ca_path}", "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    tls = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"][0]["tls"]
    assert (tls["not_before"], tls["not_after"]) == (iso(cert["notBefore"]), iso(cert["notAfter"]))
    assert tls["version"] in ("TLSv1.2", "TLSv1.3") and tls["verified"] is True
