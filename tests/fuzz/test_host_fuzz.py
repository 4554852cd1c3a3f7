"""Property: any host name on the command line (`record HOST`, `run --host HOST`) is a named error, never a traceback.

Name resolution is replaced by a stand-in that behaves like the real one up to the network -- it encodes
the name with IDNA as getaddrinfo does, raising the same UnicodeError for an empty or over-long label --
and then answers "not known", so nothing is looked up and nothing is sent.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.cli import main
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.guards import Hang, time_limit

ROOT = Path(__file__).resolve().parents[2]
LABELS = ["a", "x" * 63, "x" * 64, "x" * 300, "", "-", "xn--", "xn--zz", "\u00e9" * 70, "\u00e9", "_srv", "*", "\0",
          "\x01", " ", "\t", "%", "[", "]", ":", "\u200b", "\ufeff", "\ud7ff", "\U0001f600", "0", "127", "::1"]
hosts = st.one_of(st.lists(st.sampled_from(LABELS), min_size=1, max_size=5).map(".".join),
                  st.text(max_size=40), st.sampled_from(["a..b", ".", "..", "x" * 300, "a" * 64 + ".test"]))


@contextlib.contextmanager
def offline_resolver() -> Iterator[list[str]]:
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(repr(host))
        if isinstance(host, str):
            host.encode("idna")  # what the real one does first, before any query
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def connect(self, address):
        raise OSError(f"fuzz guard: no connections here ({address!r})")

    with mock.patch.object(socket, "getaddrinfo", getaddrinfo), \
            mock.patch.object(socket.socket, "connect", connect), \
            mock.patch.object(socket.socket, "connect_ex", connect):
        yield asked


def run_cli(argv: list[str]) -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    with offline_resolver():
        try:
            with time_limit(20, f"smtprun {' '.join(argv)[:80]}"):
                rc = main(argv, out=out, err=err)
        except (Exception, Hang) as exc:
            pytest.fail(f"main({argv!r}) raised {type(exc).__name__}: {exc}")
    text = out.getvalue() + err.getvalue()
    assert "Traceback" not in text and "internal error" not in text, text
    return rc, text


@fuzz_settings(ci=60, long=1500)
@given(host=hosts)
def test_record_any_host_name_is_a_named_error(host: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    # finding 10: a name IDNA cannot encode (a label over 63 characters, an empty label) -> UnicodeError traceback
    out = tmp_path_factory.mktemp("rec") / "new.yaml"
    with mock.patch("sys.stdin", StringIO("")):
        rc, _ = run_cli(["record", host, "-o", str(out)])
    assert rc in (1, 2, 3)


@fuzz_settings(ci=30, long=500)
@given(host=hosts)
def test_run_with_any_host_name_is_a_named_outcome(host: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("run")
    rc, _ = run_cli([str(ROOT / "plans" / "exchange.yaml"), "--host", host, "--no-report", "--timeout", "1",
                     "--json", str(folder / "r.json")])
    assert rc in (1, 2)
