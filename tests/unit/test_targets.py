"""Target lists and shards: what a user writes, and the one-line errors for what is wrong with it."""

from __future__ import annotations

import pytest

from runner.errors import PlanError
from runner.plan.targets import in_shard, parse_shard, read_targets
from tests.support.cli import run, write_plan

PLAN = "target: {host: 127.0.0.1, port: 25}\nsteps:\n  - expect: 220\n"


def targets(tmp_path, text, name="targets.txt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_every_form_of_a_target_line(tmp_path):
    path = targets(tmp_path, "# fleet\n\nmail.example.com\n192.0.2.1:2525   # lab\n[2001:db8::1]:587\n"
                             "2001:db8::2\nMX:Example.ORG.\nmx:example.net:587\n")
    found = read_targets(path)
    assert [(t.text, t.line, t.host, t.port, t.mx) for t in found] == [
        ("mail.example.com", 3, "mail.example.com", None, None),
        ("192.0.2.1:2525", 4, "192.0.2.1", 2525, None),
        ("[2001:db8::1]:587", 5, "2001:db8::1", 587, None),
        ("[2001:db8::2]", 6, "2001:db8::2", None, None),
        ("mx:example.org", 7, None, None, "example.org"),
        ("mx:example.net:587", 8, None, 587, "example.net"),
    ]


def test_csv_columns_become_the_targets_variables(tmp_path):
    path = targets(tmp_path, "target,rcpt,helo\n192.0.2.1:25,a@example.com,x.test\n"
                             "mx:example.org,\"b, c@example.org\",y.test\n", "fleet.csv")
    found = read_targets(path)
    assert [(t.text, t.vars) for t in found] == [
        ("192.0.2.1:25", {"rcpt": "a@example.com", "helo": "x.test"}),
        ("mx:example.org", {"rcpt": "b, c@example.org", "helo": "y.test"}),
    ]
    path = targets(tmp_path, "Target\n192.0.2.1:25\nmx:example.org\n", "one-column.csv")  # no comma: its header
    assert [(t.text, t.vars) for t in read_targets(path)] == [("192.0.2.1:25", {}), ("mx:example.org", {})]


@pytest.mark.parametrize(("text", "name", "messages"), [
    ("a.example\nb.example:0\nc.example:x:y\n", "t.txt",
     ["{f}:2:1: error: not a target: not a TCP port: '0'",
      "{f}:3:1: error: not a target: not a host, HOST:PORT or IPv6 address: 'c.example:x:y'"]),
    ("mx:\n", "t.txt", ["{f}:1:1: error: not a target: not a mail domain: ''"]),
    ("a.example\nb.example\nA.example\na.example\n", "t.txt",
     ["{f}:3:1: error: duplicate target a.example (first on line 1)",
      "{f}:4:1: error: duplicate target a.example (first on line 1)"]),
    ("# nothing here\n\n   \n", "t.txt",
     ["{f}:1:1: error: the target list is empty (no targets, only blank lines or comments)"]),
    ("", "t.txt", ["{f}:1:1: error: the target list is empty (no targets, only blank lines or comments)"]),
    ("host,rcpt\na.example,x\n", "t.csv",
     ["{f}:1:1: error: the first column of a CSV target list is 'target', not 'host'"]),
    ("target,rcpt\na.example,x,y\n", "t.csv", ["{f}:2:1: error: 3 columns where the header has 2"]),
    ("target,my-var\na.example,x\n", "t.csv", ["{f}:1:1: error: CSV header columns not variable names: 'my-var'"]),
    ("target,rcpt\n", "t.csv", ["{f}:1:1: error: the target list has a header row and no targets"]),
])
def test_bad_lists_name_the_file_and_line(tmp_path, text, name, messages):
    path = targets(tmp_path, text, name)
    with pytest.raises(PlanError) as caught:
        read_targets(path)
    assert [p.render().splitlines()[0] for p in caught.value.problems] == [m.format(f=path) for m in messages]


def test_a_bad_list_is_a_plan_error_and_nothing_is_sent(tmp_path):
    plan = write_plan(tmp_path, PLAN)
    path = targets(tmp_path, "192.0.2.1:25\n192.0.2.1:25\n")
    code, _, err = run(plan, "--targets", path, "--no-report")
    assert code == 2
    assert err == (f"{path}:2:1: error: duplicate target 192.0.2.1:25 (first on line 1)\n"
                   "smtprun: 1 problem found; nothing was sent\n")


@pytest.mark.parametrize(("argv", "message"), [
    (("--host", "127.0.0.1"), "smtprun: --targets names the hosts: it cannot go with --host\n"),
    (("--embedded",), "smtprun: --targets names the hosts: it cannot go with --embedded\n"),
])
def test_targets_do_not_mix_with_another_host(tmp_path, argv, message):
    plan = write_plan(tmp_path, PLAN)
    code, _, err = run(plan, "--targets", targets(tmp_path, "192.0.2.1\n"), *argv, "--no-report")
    assert (code, err) == (2, message)


@pytest.mark.parametrize("text", ["0/3", "4/3", "1", "a/b", "1/0", "2/1"])
def test_bad_shards_are_usage_errors(tmp_path, text):
    code, _, err = run(write_plan(tmp_path, PLAN), "--shard", text, "--no-report")
    assert code == 2
    assert err == f"smtprun run: argument --shard: expected K/N with 1 <= K <= N <= 10000, got {text!r}\n"
    assert parse_shard("2/3") == (2, 3)


def test_shards_never_overlap_and_cover_every_case():
    cases = [(f"case {i}", f"192.0.2.{i % 250}:25") for i in range(3000)]
    shares = [{c for c in cases if in_shard(*c, (k, 3))} for k in (1, 2, 3)]
    assert set.union(*shares) == set(cases)
    assert sum(map(len, shares)) == len(cases)
    assert all(800 < len(s) < 1200 for s in shares)  # a hash: roughly even
    assert shares[0] == {c for c in cases if in_shard(*c, (1, 3))}  # stable
