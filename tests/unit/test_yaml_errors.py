"""Plans broken the way people break YAML, and the message each earns: the line where the mistake is (not where
PyYAML gave up), the line itself with a caret under the mistake, and a hint in the plan writer's words."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import PlanError, Problem
from runner.plan import read_plan

HEAD = "name: smoke\ntarget:\n  host: 127.0.0.1\n  port: 25\ncases:\n  - name: greeting\n    steps:\n"  # lines 1-7


def broken(tmp_path: Path, text: str, name: str = "plan.yaml", secrets: tuple[str, ...] | list[str] = ()) -> Problem:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanError) as exc:
        read_plan(path, secrets=secrets)
    assert len(exc.value.problems) == 1, str(exc.value)
    return exc.value.problems[0]


# id, plan, line:col of the mistake, message, the line shown, words of the hint
MISTAKES = [
    ("key-indented-one-more", "name: smoke\ntarget:\n  host: 127.0.0.1\n   port: 25\n", "4:4",
     "this line is indented more than the key above it", "   port: 25",
     "indent this line by 2 spaces to be a key beside it"),
    ("key-indented-one-less", "name: smoke\ntarget:\n  host: 127.0.0.1\n port: 25\n", "4:2",
     "this line is indented less than the key above it", " port: 25",
     "indent it by 2 spaces to go with 'host:' on line 3, or by 0 to go with 'target:' on line 2"),
    ("step-key-two-less", HEAD + "      - send: EHLO client.test\n      expect: 250\n", "9:7",
     "a key where the list's next item ('- ') should begin", "      expect: 250",
     "write '- expect: 250' to start a new item, or indent this line by 8 spaces to add it to the item above"),
    ("step-key-one-less", HEAD + "      - send: EHLO client.test\n       expect: 250\n", "9:8",
     "this line is indented less than the key above it", "       expect: 250",
     "indent it by 8 spaces to go with 'send:' on line 8"),
    ("step-key-one-more", HEAD + "      - send: EHLO client.test\n         expect: 250\n", "9:10",
     "this line is indented more than the key above it", "         expect: 250",
     "'send:' on line 8 has its value after the ':'"),
    ("tab-indentation", "name: smoke\ntarget:\n\thost: 127.0.0.1\n", "3:1", "a tab in the indentation",
     "\\thost: 127.0.0.1", "YAML indents with spaces, never tabs"),
    ("tab-after-colon", "name: smoke\ntarget:\n  host:\t127.0.0.1\n", "3:8", "a tab between the parts of this line",
     "  host:\\t127.0.0.1", "write a space instead"),
    ("no-space-after-colon", "name: smoke\ntarget:\n  host:127.0.0.1\n  port: 25\n", "3:7",
     "no space after the ':' of 'host'", "  host:127.0.0.1", "(write host: 127.0.0.1)"),
    ("no-space-first-line", "name:smoke\ncases: []\n", "1:5", "no space after the ':' of 'name'", "name:smoke",
     "(write name: smoke)"),
    ("colon-in-send", HEAD + "      - send: RCPT TO: alice@x NOTIFY=success,failure\n        expect: 250\n", "8:22",
     "a value with ': ' in it must be quoted", "      - send: RCPT TO: alice@x NOTIFY=success,failure",
     "YAML reads 'TO:' as the start of another key: quote the whole value: "
     "- send: \"RCPT TO: alice@x NOTIFY=success,failure\""),
    ("colon-in-flow", HEAD + "      - expect: {code: 250, text: Ok: queued}\n", "8:37",
     "a ':' inside '{...}' where YAML expects ',' or '}'", "      - expect: {code: 250, text: Ok: queued}",
     "quote the whole value: - expect: {code: 250, text: \"Ok: queued\"}"),
    ("comma-missing", HEAD + "      - expect: {code: 250 text: Ok}\n", "8:32",
     "a ':' inside '{...}' where YAML expects ',' or '}'", "      - expect: {code: 250 text: Ok}",
     "is a ',' missing before 'text'?"),
    ("unclosed-double-quote", HEAD + '      - send: "EHLO client.test\n        expect: 250\n      - send: QUIT\n',
     "8:15", 'this " is never closed', '      - send: "EHLO client.test', 'end the value with " on this line'),
    ("unclosed-single-quote", "name: 'smoke\ncases: []\n", "1:7", "this ' is never closed", "name: 'smoke",
     "end the value with ' on this line"),
    ("quote-closed-lines-later", 'vars:\n  helo: "client.test\n  sender: a@example.com\n  rcpt: "b@example.com"\n',
     "2:9", 'this " is closed only on line 4', '  helo: "client.test', 'the " on line 4 closed it instead'),
    ("template-unquoted", HEAD + "      - send: {{ helo }}\n", "8:15", "a value that starts with '{{' must be quoted",
     "      - send: {{ helo }}", "YAML reads '{' as the start of a mapping: quote the whole value: "
     "- send: \"{{ helo }}\""),
    ("template-unquoted-then-text", HEAD + "      - send: {{ verb }} client.test\n", "8:15",
     "a value that starts with '{{' must be quoted", "      - send: {{ verb }} client.test",
     "quote the whole value: - send: \"{{ verb }} client.test\""),
    ("dash-missing", HEAD + "      - send: EHLO client.test\n        expect: 250\n      send: QUIT\n"
     "        expect: 221\n", "10:7", "a key where the list's next item ('- ') should begin", "      send: QUIT",
     "each item of the list on line 8 begins with '- ': write '- send: QUIT' to start a new item"),
    ("dash-missing-same-key", HEAD + "      - send: EHLO client.test\n        expect: 250\n        send: QUIT\n",
     "10:9",
     "duplicate key 'send' (first given on line 8)", "        send: QUIT",
     "if this line starts the next item of the list, begin it with '- '"),
    ("list-item-too-far-left", HEAD + "      - send: EHLO client.test\n    - send: QUIT\n", "9:5",
     "this list item is indented less than the one on line 8", "    - send: QUIT",
     "put its '-' under the one on line 8 (6 spaces)"),
    ("list-item-too-far-right", HEAD + "      - send: EHLO client.test\n        - send: QUIT\n", "9:9",
     "this list item is indented more than the one on line 8", "        - send: QUIT",
     "put its '-' under the one on line 8 (6 spaces)"),
    ("list-item-among-keys", "name: smoke\ntarget:\n  host: 127.0.0.1\n  - port: 25\n", "4:3",
     "a list item ('- ') among the keys of a mapping", "  - port: 25", "leave out the '- '"),
    ("list-under-a-valued-key", "name: smoke\nsteps: greeting\n  - expect: 220\n", "3:3",
     "a list below 'steps:', which has its value after the ':'", "  - expect: 220",
     "to give 'steps:' this list, leave nothing after its ':'"),
    ("colon-missing", HEAD + "      - send EHLO client.test\n        expect: 250\n", "8:7",
     "this line has no ':' after its key", "      - send EHLO client.test", "is a ':' missing after 'send'?"),
    ("key-without-colon", "name: smoke\ntarget\n  host: 127.0.0.1\n", "2:1",
     "a line without 'key: ' where a key is expected", "target", "is a ':' missing after 'target'?"),
    ("bracket-never-closed", HEAD + "      - expect: {code: 250, keywords: [PIPELINING, DSN}\n", "8:55",
     "'[' closed by '}'", "      - expect: {code: 250, keywords: [PIPELINING, DSN}", "close a '[' with ']'"),
    ("brace-never-closed", HEAD + "      - expect: {code: 250\n      - send: QUIT\n", "8:17",
     "this '{' is never closed", "      - expect: {code: 250", "YAML read on to line 9 looking for it"),
    ("list-never-closed", "vars:\n  helos: [a.test, b.test\n", "2:10", "this '[' is never closed",
     "  helos: [a.test, b.test", "close it with ']' on this line"),
    ("list-never-closed-at-the-end", "vars:\n  helos: [a.test, b.test,\n", "2:10", "this '[' is never closed",
     "  helos: [a.test, b.test,", "close it with ']'"),
    ("empty-entry", "vars:\n  helos: [a.test, , b.test]\n", "2:19", "a ',' with no value before it",
     "  helos: [a.test, , b.test]", "remove the extra ','"),
    ("list-on-the-key-line", "vars:\n  helos: - a.test\n", "2:10",
     "a list item ('- ') cannot start on the line of its key", "  helos: - a.test",
     "put each '- item' on a line of its own below the key"),
    ("dash-in-braces", HEAD + "      - expect: {code: 250, keywords: - DSN}\n", "8:39",
     "a '- ' list item inside '[...]' or '{...}'", "      - expect: {code: 250, keywords: - DSN}",
     "between brackets a list is written [a, b]"),
    ("regex-in-double-quotes", HEAD + '      - expect: 250\n        capture: {id: "queued as (\\S+)"}\n', "9:35",
     "'\\S' is not an escape YAML knows between double quotes", '        capture: {id: "queued as (\\S+)"}',
     "write a regex or a path between single quotes"),
    ("quote-inside-quotes", HEAD + '      - send: "NOOP say "hi""\n', "8:26", "text after the closing quote",
     '      - send: "NOOP say "hi""', "write the value between ' quotes"),
    ("at-sign-first", "vars:\n  sender: @example.com\n", "2:11", "a value cannot begin with '@' unless it is quoted",
     "  sender: @example.com", "quote the whole value: sender: \"@example.com\""),
    ("star-first", HEAD + "      - send: * NOOP\n", "8:15", "a value cannot begin with '*' unless it is quoted",
     "      - send: * NOOP", "YAML reads '*name' as a reference to an anchor"),
    ("text-dedented-in-block", HEAD + "      - data: |\n          Subject: hello\n        body\n", "10:9",
     "this line is indented less than the text block it is in", "        body",
     "every line of the block that starts on line 8"),
    ("text-after-pipe", HEAD + "      - data: |Subject: hello\n", "8:15", "text after '|' on its line",
     "      - data: |Subject: hello", "the text of a '|' block starts on the next line"),
    ("second-document", "name: smoke\n---\nname: other\n", "2:1", "a second YAML document starts here", "---",
     "a plan is one YAML document"),
    ("blank-lines-then-too-far-right", "name: smoke\ntarget:\n  host: 127.0.0.1\n\n\n   port: 25\n", "6:4",
     "this line is indented more than the key above it", "   port: 25", "'host:' on line 3"),
]


@pytest.mark.parametrize(("text", "where", "message", "shown", "hint"), [m[1:] for m in MISTAKES],
                         ids=[m[0] for m in MISTAKES])
def test_each_mistake_is_named_on_its_line_with_a_hint(tmp_path: Path, text: str, where: str, message: str,
                                                       shown: str, hint: str) -> None:
    problem = broken(tmp_path, text)
    assert (f"{problem.location.line}:{problem.location.col}", problem.message.removeprefix("YAML syntax: "),
            problem.source_line) == (where, message, shown)
    assert hint in (problem.hint or ""), problem.hint
    caret = problem.render().split("\n")[2]
    assert caret.strip() == "^" and len(caret) - 4 == problem.caret
    if "\\" not in shown:  # no character written as an escape before it: the caret is under the column named
        assert problem.caret == int(where.split(":")[1])


def test_the_two_reported_examples_read_as_a_compiler_would_say_them(tmp_path: Path) -> None:
    indent = HEAD + "      - send: EHLO client.test\n        expect: 250\n      send: QUIT\n"
    assert broken(tmp_path, indent, "indent2.yaml").render() == (
        f"{tmp_path}/indent2.yaml:10:7: error: YAML syntax: a key where the list's next item ('- ') should begin\n"
        "          send: QUIT\n"
        "          ^\n"
        "    hint: each item of the list on line 8 begins with '- ': write '- send: QUIT' to start a new item, or "
        "indent this line by 8 spaces to add it to the item above")
    notify = HEAD + "      - send: RCPT TO: alice@x NOTIFY=success,failure\n"
    assert broken(tmp_path, notify).render() == (
        f"{tmp_path}/plan.yaml:8:22: error: YAML syntax: a value with ': ' in it must be quoted\n"
        "          - send: RCPT TO: alice@x NOTIFY=success,failure\n"
        "                         ^\n"
        "    hint: YAML reads 'TO:' as the start of another key: quote the whole value: "
        "- send: \"RCPT TO: alice@x NOTIFY=success,failure\"")


# --- secrets stay hidden in a file YAML cannot read whole ----------------------------------------------------------

@pytest.mark.parametrize("text", [
    "target:\n  host: 127.0.0.1\nauth: {user: a, password: \"hunter2-pw\n",  # the quote is never closed
    "auth:\n  user: a\n  password:hunter2-pw\n  mechanism: plain\n",  # no space after the colon
    "auth:\n  password: hunter2-pw: x\n",  # a ': ' in the secret itself
    "auth:\n  password:\n    hunter2-pw\n    x: 1\n",  # the value on the line below its key
    "auth:\n  password: \"hunter2-pw\n  more\"  x\n",  # a quote closed on a later line
    "vars:\n  token: hunter2-pw: x\nsecrets: [token]\n",  # a variable that `secrets:`, below the mistake, names
    "vars:\n  token: \"hunter2-pw \\q\"\nsecrets: [token]\n",  # an escape YAML does not know, in the secret
])
def test_no_secret_shows_in_a_syntax_error(tmp_path: Path, text: str) -> None:
    problem = broken(tmp_path, text)
    assert "hunter2" not in problem.render() and "***" in problem.render(), problem.render()


def test_a_secret_given_on_the_command_line_is_masked_in_a_syntax_error(tmp_path: Path) -> None:
    problem = broken(tmp_path, "vars:\n  note: Bearer tok-5e4d3c: x\n", secrets=["tok-5e4d3c"])
    assert "tok-5e4d3c" not in problem.render() and "***" in (problem.source_line or "")


# --- which files have a line quoted ---------------------------------------------------------------------------------

def test_a_plan_not_named_yaml_that_opens_as_a_mapping_is_quoted(tmp_path: Path) -> None:
    assert broken(tmp_path, "name: smoke\ntarget:\n  host:127.0.0.1\n  port: 25\n", "smoke.txt").source_line == \
        "  host:127.0.0.1"


def test_a_file_that_is_not_yaml_gets_a_hint_but_no_line(tmp_path: Path) -> None:
    problem = broken(tmp_path, "TOKEN=hunter2-env\n\tPASSWORD: [x\n", "creds.env")
    assert problem.source_line is None and problem.hint and "hunter2" not in problem.render()
