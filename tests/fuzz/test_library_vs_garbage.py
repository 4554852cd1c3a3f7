"""Every library plan against the garbage server: a named outcome, never a crash, never a secret shown.

Each plan runs in-process through `runner.cli.main` against tests/support/garbage.py, one session at a
time (`-j 1`, so a seed replays exactly), with a secret given by `--secret password=...`. Asserted:
exit 0 or 1; no "Traceback" or "internal error" on the console; bounded wall time and memory; only
loopback traffic; and the secret nowhere -- console, JSON, JUnit, HTML -- neither raw nor in any
escaped form (repr, ascii, JSON, HTML/XML entities, base64, unicode-escape), nor inside a base64 token
of the output. A failure names its seed; replay it with SMTPRUN_FUZZ_SEEDS=<seed> (see README.md).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import html
import json
import logging
import re
import time
import urllib.parse
from io import StringIO
from pathlib import Path

import pytest

from runner.cli import main
from runner.plan import read_plan
from tests.fuzz.budget import GARBAGE_SEEDS
from tests.fuzz.guards import Hang, loopback_only, peak_rss_mb, time_limit
from tests.support.dnsserver import DnsServer
from tests.support.garbage import GarbageServer, ScriptedServer

ROOT = Path(__file__).resolve().parents[2]
PLANS = sorted(p.name for p in ROOT.glob("plans/*.yaml"))
SECRETS = ['Sup3r"S3cret\\PW', "it's-a\tT4B'pw", "p\u00e4ssw\u00f6rd-\u20ac-\u00fcn\u00ef\\x", "<&\"'>\\\\n-pw"]
CASE_SECONDS = 10  # --session-timeout
RSS_LIMIT_MB = 1024

# A plan of our own that puts the secret on the wire in every way a plan can (the library plans only do it
# after a real STARTTLS, in submission-auth.yaml): the garbage server echoes those lines back.
ECHO_PLAN = """\
name: secret echo
target: {host: 127.0.0.1, port: 25, timeout: 5}
vars: {user: alice, password: change-me}
secrets: [password]
cases:
  - name: AUTH PLAIN with an initial response
    steps:
      - expect: 220
      - send: "EHLO fuzz.test"
        expect: 250
      - auth: {mechanism: PLAIN, username: "{{ user }}", password: "{{ password }}"}
  - name: AUTH LOGIN
    steps:
      - expect: 220
      - auth: {mechanism: LOGIN, username: "{{ user }}", password: "{{ password }}"}
  - name: the password on a command line
    steps:
      - expect: 220
      - send: "NOOP {{ password }}"
        expect: 250
      - send: "XPASS {{ password }}"
        expect: 250
      - raw: "RSET {{ password }}\\r\\n"
        expect: 250
  - name: the password in a body
    steps:
      - expect: 220
      - send: DATA
        expect: 354
      - data: "Subject: {{ password }}\\n\\n{{ password }}\\n"
        expect: 250
"""


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory):
    """A server context for the garbage server's real STARTTLS, and the CA file plans verify it with."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", "garbage.test")
    folder = tmp_path_factory.mktemp("garbage-tls")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    return ctx, folder / "ca.pem"


@pytest.fixture(scope="module")
def dns():
    """An empty zone on loopback: the plans' DNS checks get NXDOMAIN here instead of asking the world."""
    with DnsServer({}) as server:
        yield "{}:{}".format(*server.nameservers[0])


def secret_forms(secret: str) -> dict[str, str]:
    """The secret as every output format might spell it."""
    raw = secret.encode("utf-8")
    forms = {
        "raw": secret,
        "repr": repr(secret)[1:-1],
        "repr (double-quoted)": repr(secret + '"')[1:-2] if "'" in secret else repr(secret)[1:-1],
        "ascii": ascii(secret)[1:-1],
        "JSON": json.dumps(secret)[1:-1],
        "JSON (UTF-8)": json.dumps(secret, ensure_ascii=False)[1:-1],
        "HTML": html.escape(secret),
        "HTML (quotes as &#34;)": html.escape(secret).replace("&quot;", "&#34;").replace("&#x27;", "&#39;"),
        "HTML (no quotes)": html.escape(secret, quote=False),
        "unicode-escape": raw.decode("latin-1").encode("unicode_escape").decode("ascii"),
        "bytes repr": repr(raw)[2:-1],
        "base64": base64.b64encode(raw).decode(),
        "URL": urllib.parse.quote(secret),
    }
    if len(secret) >= 40:  # a long secret cut short in a message is no longer masked, but still shown
        forms["its first 24 characters"] = secret[:24]
    return {name: form for name, form in forms.items() if len(form) >= 4}


_B64 = re.compile(r"[A-Za-z0-9+/]{8,}={0,2}")


def _strings(data: object) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for k, v in data.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return []


def leaks(text: str, secret: str) -> list[str]:
    """Where the secret shows in `text`, as a list of descriptions (empty: nowhere)."""
    found = []
    views = {"as written": text, "after HTML unescaping": html.unescape(text)}
    with contextlib.suppress(ValueError):
        views["after JSON decoding"] = "\n".join(_strings(json.loads(text)))
    for view, body in views.items():
        for name, form in secret_forms(secret).items():
            if form in body:
                i = body.index(form)
                found.append(f"{name} form {form!r} {view}: ...{body[max(i - 80, 0): i + len(form) + 40]!r}...")
    for token in _B64.findall(text):
        try:
            decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        if secret.encode("utf-8") in decoded:
            found.append(f"inside the base64 token {token!r} (decodes to {decoded!r})")
    return found


@pytest.fixture
def leftovers(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture):
    """What reaches the terminal around the console: the process's own stdout/stderr and logged records
    (asyncio's "Exception in callback ..." goes there, not through smtprun's console)."""
    caplog.set_level(logging.WARNING)

    def take() -> str:
        fd = capfd.readouterr()
        logged = [logging.Formatter().format(r) for r in caplog.records if r.levelno >= logging.WARNING]
        caplog.clear()
        return fd.out + fd.err + "\n".join(logged)

    return take


def run_against_garbage(plan: Path, seed: int, tmp_path: Path, tls, dns: str, secret: str | None = None,
                        server: GarbageServer | ScriptedServer | None = None,
                        leftovers=None) -> GarbageServer | ScriptedServer:
    ctx, cafile = tls
    secret = secret or SECRETS[seed % len(SECRETS)]
    out, err = StringIO(), StringIO()
    json_path, junit_path, reports = tmp_path / "run.json", tmp_path / "run.xml", tmp_path / "reports"
    declared = read_plan(plan).vars  # a --var or --secret no plan reads is refused: give what the plan declares
    given = [f"--secret=password={secret}"] * ("password" in declared) + [f"--var=cafile={cafile}"] * (
        "cafile" in declared)
    argv = [str(plan), "--host", "127.0.0.1:{port}", *given,
            "--nameserver", dns, "--json", str(json_path), "--junit", str(junit_path), "--report-dir", str(reports),
            "--timeout", "2", "--session-timeout", str(CASE_SECONDS), "-j", "1"]
    cases = max(plan.read_text("utf-8").count("- name:"), 1)
    budget = cases * (CASE_SECONDS + 1) + 20
    with server or GarbageServer(seed, tls=ctx) as server:
        argv[2] = argv[2].format(port=server.port)
        started = time.monotonic()
        with loopback_only() as refused:
            try:
                with time_limit(budget, f"{plan.name} against the garbage server, seed {seed}"):
                    rc = main(argv, out=out, err=err)
            except (Exception, Hang) as exc:
                pytest.fail(f"seed {seed}, {plan.name}: main() raised {type(exc).__name__}: {exc}\n"
                            f"{server.transcript()}")
        elapsed = time.monotonic() - started
    console = out.getvalue() + err.getvalue()
    stray = leftovers() if leftovers else ""
    where = f"seed {seed} (replay: SMTPRUN_FUZZ_SEEDS={seed}), plan {plan.name}, secret {secret!r}"
    shown = f"\n--- console ---\n{console[:6000]}\n--- server ---\n{server.transcript()}"
    assert not refused, f"{where}: traffic off the loopback: {refused}"
    for marker in ("Traceback", "internal error"):
        assert marker not in console, f"{where}: {marker!r} on the console{shown}"
    # finding 11: asyncio/uvloop report "Exception in callback ... RuntimeError" (a traceback) past the console
    assert not stray.strip(), f"{where}: output past the console (stderr or logging):\n{stray[:4000]}{shown}"
    assert rc in (0, 1), f"{where}: exit status {rc}{shown}"
    assert elapsed < budget, f"{where}: took {elapsed:.1f}s (budget {budget}s){shown}"
    assert peak_rss_mb() < RSS_LIMIT_MB, f"{where}: peak RSS {peak_rss_mb():.0f} MiB{shown}"
    outputs = {"console": console, "stderr and logs": stray}
    for path in [json_path, junit_path, *sorted(reports.rglob("*"))]:
        if path.is_file():
            outputs[str(path.relative_to(tmp_path))] = path.read_text("utf-8", errors="replace")
    assert json_path.exists() and junit_path.exists(), f"{where}: JSON or JUnit not written{shown}"
    problems = [f"{name}: {leak}" for name, text in outputs.items() for leak in leaks(text, secret)[:3]]
    assert not problems, f"{where}: the secret is shown:\n" + "\n".join(problems[:40]) + shown
    return server


@pytest.mark.parametrize("seed", GARBAGE_SEEDS)
@pytest.mark.parametrize("plan", PLANS)
def test_library_plan_against_the_garbage_server(plan: str, seed: int, tmp_path: Path, tls, dns, leftovers) -> None:
    # finding 2: a banner of the code and spaces only (`220  `) gives "internal error: IndexError" (seed 5, smuggling);
    # finding 1 in the long run (submission-auth.yaml, seed 1008: the password echoed after a real STARTTLS)
    run_against_garbage(ROOT / "plans" / plan, seed, tmp_path, tls, dns, leftovers=leftovers)


def test_a_seed_replays_the_same_server(tmp_path: Path, tls, dns) -> None:
    """What makes a failure reproducible: the same seed, the same replies, connection by connection."""
    def replies(server: GarbageServer) -> list[list[str]]:
        return [[line for line in s.log if line.startswith("S")] for s in server.sessions]

    runs = []
    for i in range(2):
        (tmp_path / str(i)).mkdir()
        runs.append(replies(run_against_garbage(ROOT / "plans" / "exchange.yaml", 4, tmp_path / str(i), tls, dns)))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("seed", GARBAGE_SEEDS)
def test_a_secret_echoed_by_the_garbage_server_is_never_shown(seed: int, tmp_path: Path, tls, dns, leftovers) -> None:
    # finding 1: the secret comes back repr()-escaped in "protocol error: not an SMTP reply line: '...'" (seed 8);
    # finding 2 in the long run (seeds 1008, 1009, 1021, 1027, 1033)
    plan = tmp_path / "echo.yaml"
    plan.write_text(ECHO_PLAN, "utf-8")
    run_against_garbage(plan, seed, tmp_path, tls, dns, leftovers=leftovers)


# --- each garbage finding pinned down with a fixed script -----------------------------------------------------

EHLO_OK = b"250-garbage.test\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n"


@pytest.mark.parametrize("secret", SECRETS, ids=range(len(SECRETS)))
@pytest.mark.parametrize("form", ["invalid line", "bare LF", "NUL"])
def test_a_secret_echoed_in_a_broken_reply_is_never_shown(form: str, secret: str, tmp_path: Path, tls, dns) -> None:
    # finding 1: "protocol error: not an SMTP reply line: '...'" shows the line through repr(): a secret with
    # a quote, backslash or tab in it comes out escaped, and the redactor (which looks for the raw value) misses it
    def echo(line: bytes) -> bytes:
        text = line.rstrip(b"\r")
        return {"invalid line": b"xx " + text + b"\r\n", "bare LF": b"550 " + text + b"\n",
                "NUL": b"550 \x00" + text + b"\r\n"}[form]

    plan = tmp_path / "echo.yaml"
    plan.write_text(ECHO_PLAN.split("  - name: AUTH PLAIN")[0] + "  - name: echo\n    steps:\n      - expect: 220\n"
                    "      - send: \"NOOP {{ password }}\"\n        expect: 250\n", "utf-8")
    run_against_garbage(plan, 0, tmp_path, tls, dns, secret=secret, server=ScriptedServer([b"220 ok\r\n", echo]))


@pytest.mark.parametrize("reply", [b"220  \r\n", b"220 \t\r\n", b"220    \r\n", b"220- \r\n220 \r\n"],
                         ids=["code+2 spaces", "code+space+tab", "code+4 spaces", "multiline blank"])
@pytest.mark.parametrize("where", ["banner", "EHLO"])
def test_a_reply_of_a_code_and_blanks_is_judged_not_a_crash(where: str, reply: bytes, tmp_path: Path, tls,
                                                            dns) -> None:
    # finding 2: a first reply line that is blank after its code -> "internal error: IndexError: list index out
    # of range" (the greeting's host name is taken as the first word of a line that has none)
    script = [reply, EHLO_OK] if where == "banner" else [b"220 garbage.test\r\n", reply.replace(b"220", b"250")]
    script += [b"250 ok\r\n"] * 4 + [b"354 go\r\n", b"250 queued\r\n", b"221 bye\r\n"]
    run_against_garbage(ROOT / "plans" / "exchange.yaml", 0, tmp_path, tls, dns, server=ScriptedServer(script))


@pytest.mark.parametrize("after", [b"", b"\x15\x03\x01\x00\x02\x02\x28"], ids=["close", "TLS alert, close"])
def test_a_server_that_hangs_up_after_its_starttls_220_prints_no_traceback(after: bytes, tmp_path: Path, tls, dns,
                                                                           leftovers) -> None:
    # finding 11: uvloop's SSLProtocol logs "Exception in callback SSLProtocol.connection_made ... RuntimeError:
    # unable to perform operation on <TCPTransport closed=True ...>" with its traceback, on stderr
    script = [b"220 ok\r\n", b"250-garbage.test\r\n250 STARTTLS\r\n", b"220 2.0.0 go ahead\r\n" + after]
    run_against_garbage(ROOT / "plans" / "starttls.yaml", 0, tmp_path, tls, dns, server=ScriptedServer(script),
                        leftovers=leftovers)


LONG_SECRET = "L0ng-s3cret-" * 7


@pytest.mark.parametrize("secret", [*SECRETS, LONG_SECRET], ids=[*map(str, range(len(SECRETS))), "long"])
def test_bytes_no_command_asked_for_never_show_the_next_commands_secret(secret: str, tmp_path: Path, tls, dns,
                                                                         leftovers) -> None:
    # finding 1 (second path): "the server sent N bytes that no command asked for, before '...'" quotes the
    # command about to be sent through repr() and cut at 60 bytes: escaped or truncated, the secret is not masked
    plan = tmp_path / "early.yaml"
    plan.write_text(ECHO_PLAN.split("  - name: AUTH PLAIN")[0] + "  - name: early\n    steps:\n      - expect: 220\n"
                    "      - send: \"NOOP {{ password }}\"\n        expect: 250\n", "utf-8")
    script = [b"220 ok\r\n250 2.0.0 early\r\n", b"250 ok\r\n"]
    run_against_garbage(plan, 0, tmp_path, tls, dns, secret=secret, server=ScriptedServer(script), leftovers=leftovers)


def test_a_long_secret_in_a_broken_reply_is_never_shown(tmp_path: Path, tls, dns, leftovers) -> None:
    # finding 1 (truncation): "not an SMTP reply line: '...'" keeps 60 characters, cutting a long secret short
    plan = tmp_path / "echo.yaml"
    plan.write_text(ECHO_PLAN.split("  - name: AUTH PLAIN")[0] + "  - name: echo\n    steps:\n      - expect: 220\n"
                    "      - send: \"NOOP {{ password }}\"\n        expect: 250\n", "utf-8")
    script = [b"220 ok\r\n", lambda line: b"xx " + line.rstrip(b"\r") + b"\r\n"]
    run_against_garbage(plan, 0, tmp_path, tls, dns, secret=LONG_SECRET, server=ScriptedServer(script),
                        leftovers=leftovers)
