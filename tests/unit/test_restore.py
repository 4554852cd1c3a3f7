"""A run read back from its --json is the run that wrote it (what `smtprun merge` relies on)."""

from __future__ import annotations

import json

import pytest

from runner.errors import ReportError
from runner.report.jsonout import json_text
from runner.report.restore import read_result, run_from_dict, unshow_bytes
from runner.results import RECV, Event, show_bytes
from tests.support.results import standard_run


def test_to_dict_of_the_restored_run_is_the_json_it_came_from():
    run = standard_run()
    run.shard = (2, 5)
    case = run.plans[0].cases[0]
    case.transcript.append(Event(0.5, RECV, b"250 caf\xc3\xa9 \\x41 \x1b[31m \xff\r\n"))
    case.position = 7
    case.steps[0].details = {"mailbox": "imap://alice@127.0.0.1:143/INBOX", "found": True, "waited": 0.4}
    case.steps[-1].verdict = "vulnerable: the server answered the smuggled MAIL FROM"
    data = json.loads(json_text(run))
    assert run_from_dict(data).to_dict() == data


@pytest.mark.parametrize("raw", [b"", b"plain", b"a\\b", b"\\x41", b"\r\n\t", b"\xff\xfe", "é\u202e".encode()])
def test_unshow_bytes_undoes_show_bytes(raw):
    assert unshow_bytes(show_bytes(raw)) == raw


def test_what_is_not_a_result_says_so(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"smtprun": "1", "plans": [{"name": "x"}]}')
    with pytest.raises(ReportError, match=r"r.json: not an smtprun --json result: the field 'started_at' is missing"):
        read_result(path)
    path.write_text('["not", "a", "run"]')
    with pytest.raises(ReportError, match=r"r.json: not an smtprun --json result \(no 'smtprun' version and 'plans'\)"):
        read_result(path)
