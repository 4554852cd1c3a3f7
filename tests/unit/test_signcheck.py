"""A step's `dkim:` checked as the plan is read (runner/plan/signcheck.py): only beside `data:` or `data_file:`,
its key file there, a data_file to sign within the bound; a plan that cannot sign never sends."""

from __future__ import annotations

import os
from pathlib import Path

from runner.mail.compose import MAX_SIGNED_BYTES
from runner.plan import read_plan
from tests.support.validation import problems, write

SIGN = "    dkim: {domain: example.com, selector: s1, key: k.pem}\n"


def plan(tmp_path: Path, step: str, dkim: str = SIGN) -> Path:
    return write(tmp_path, f"target: {{host: mx.example.com}}\nsteps:\n{step}{dkim}")


def test_dkim_beside_data_resolves_its_key_against_the_plan(tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_text("key")
    step = read_plan(plan(tmp_path, '  - data: "From: a@example.com\\n\\nhi\\n"\n')).cases[0].steps[0]
    assert step.dkim is not None
    assert (step.dkim.domain, step.dkim.selector, step.dkim.key) == ("example.com", "s1", str(tmp_path / "k.pem"))


def test_dkim_elsewhere_is_refused_saying_where_it_goes(tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_text("key")
    found = problems(plan(tmp_path, "  - send: DATA\n  - message: {text: hi}\n"))
    assert [(where.rsplit(":", 2)[-2:], message, hint) for where, message, hint in found] == [
        (["5", "5"], "dkim: signs the body a data: or data_file: step sends; this step is message:",
         "give it under message: (message: {..., dkim: {domain, selector, key}})")]
    found = problems(plan(tmp_path, "  - expect: 220\n"))
    assert [(message, hint) for _, message, hint in found] == [
        ("dkim: signs the body a data: or data_file: step sends; this step sends nothing",
         "put it on the step that sends the message")]


def test_a_missing_key_and_a_file_too_large_to_sign_are_refused(tmp_path: Path) -> None:
    with open(tmp_path / "big.eml", "wb") as fh:
        fh.truncate(MAX_SIGNED_BYTES + 1)  # sparse: no disk space taken
    found = problems(plan(tmp_path, "  - data_file: big.eml\n"))
    assert [message for _, message, _ in found] == [
        f"dkim key not found: {tmp_path}/k.pem",
        f"data_file big.eml has {MAX_SIGNED_BYTES + 1} bytes: smtprun reads a file whole to sign it with dkim:, "
        f"at most {MAX_SIGNED_BYTES} bytes"]
    os.truncate(tmp_path / "big.eml", MAX_SIGNED_BYTES)
    (tmp_path / "k.pem").write_text("key")
    assert read_plan(plan(tmp_path, "  - data_file: big.eml\n")).cases[0].steps[0].dkim is not None
