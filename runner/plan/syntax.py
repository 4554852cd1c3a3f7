"""What a YAML syntax error means, in a plan writer's words, and on the line where the mistake is.

PyYAML names its tokens (`expected <block end>, but found '?'`) and marks where it gave up, which is
often the line after the mistake: an unclosed quote is found at the end of the file, a key without a
space after its colon when the next key is read. Each rule below recognises one mistake people make
(indentation off by one, a tab, `key:value`, an unquoted `: ` or `{{ var }}` in a value, an unclosed
quote or bracket, a missing `- `) from PyYAML's words and the text around them, and says where it is and
how to write it instead. A rule that does not recognise the error leaves it to the next; the last one
always answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml
from yaml.tokens import (
    FlowMappingEndToken,
    FlowMappingStartToken,
    FlowSequenceEndToken,
    FlowSequenceStartToken,
    ScalarToken,
    Token,
)

from runner.plan.fault import Fault, Overlaps, quote_advice

__all__ = ["Diagnosis", "explain", "unquoted_template"]


@dataclass(frozen=True)
class Diagnosis:
    message: str
    index: int  # where the caret goes: a character index of the text
    hint: str


_NO_SPACE = re.compile(r"[ ]*(?:-[ ]+)*(?P<key>[^\s:#'\"\[\]{}-][^\s:]*):(?P<value>[^\s:/\\][^\s]*)")
_BLOCK_HEADER = re.compile(r":[ ]+[|>][-+0-9]*[ ]*(?:#.*)?$")
_TOKEN_WORDS = {"<block end>": "the end of the block", "<block mapping start>": "a new mapping",
                "<block sequence start>": "a new list", "<scalar>": "a value", "?": "a key", "-": "a list item",
                "<stream end>": "the end of the file", "<document start>": "a new document"}
_CLOSE = {"[": "]", "{": "}"}
GENERIC_HINT = ("look at this line and the one above it: keys of one mapping start in the same column, "
                "a key's ':' is followed by a space, quotes and brackets are closed, and indentation is spaces")


# --- the rules -------------------------------------------------------------------------------------------------------

def _tab(f: Fault) -> Diagnosis | None:
    if "'\\t'" not in f.problem:
        return None
    row = f.row(f.at)
    if not f.rows[row][:f.col(f.at)].strip(" "):
        return Diagnosis("a tab in the indentation", f.at, "YAML indents with spaces, never tabs")
    return Diagnosis("a tab between the parts of this line", f.at,
                     "YAML separates with spaces: write a space instead (a tab inside a value needs "
                     'double quotes: "a\\tb")')


def _reserved_start(f: Fault) -> Diagnosis | None:
    """`@foo`, `` `cmd` ``, `%x`, `*` or `&` at the start of a value: characters YAML keeps for itself."""
    alias = "undefined alias" in f.problem or f.context in ("while scanning an alias", "while scanning an anchor")
    tag = f.problem.startswith("found undefined tag handle") or f.context == "while scanning a tag"
    if not (alias or tag or "that cannot start any token" in f.problem
            or f.problem == "mapping keys are not allowed here"):
        return None
    at = f.context_at if f.context_at is not None and not f.problem.startswith("found undefined") else f.at
    char = f.text[at:at + 1]
    why = {"*": "YAML reads '*name' as a reference to an anchor", "&": "YAML reads '&name' as an anchor",
           "?": "YAML reads '? ' as the start of a key", "!": "YAML reads '!name' as a tag"}.get(
        char, f"YAML keeps '{char}' for itself")
    return Diagnosis(f"a value cannot begin with '{char}' unless it is quoted", at,
                     quote_advice(f, f.row(at), at, why))


def _escape(f: Fault) -> Diagnosis | None:
    found = re.match(r"found unknown escape character '(.+)'", f.problem)
    if not found:
        return None
    escape = f.named(f.at - 1, f.at + 1, "this backslash")
    return Diagnosis(f"{escape} is not an escape YAML knows between double quotes", f.at - 1,
                     "between double quotes a backslash starts an escape (\\n, \\t, \\\\): write a regex or a "
                     "path between single quotes ('queued as (\\S+)'), or double each backslash")


def _unclosed_quote(f: Fault) -> Diagnosis | None:
    if f.context != "while scanning a quoted scalar" or f.context_at is None:
        return None
    quote = f.text[f.context_at]
    return Diagnosis(f"this {quote} is never closed", f.context_at,
                     f"end the value with {quote} on this line: everything after the opening {quote} to the end "
                     "of the file was read as one value")


def _block_header(f: Fault) -> Diagnosis | None:
    if f.context != "while scanning a block scalar" or f.context_at is None:
        return None
    char = f.text[f.context_at]
    return Diagnosis(f"text after '{char}' on its line", f.context_at,
                     f"the text of a '{char}' block starts on the next line, indented below its key; for one line "
                     f"of text, leave out the '{char}'")


def _no_colon(f: Fault) -> Diagnosis | None:
    """A line that is neither `key: value` nor inside the text block above it."""
    if f.context != "while scanning a simple key" or f.context_at is None:
        return None
    row = f.row(f.context_at)
    for r in range(row - 1, -1, -1):
        if f.rows[r].strip() and f.indent(r) < f.indent(row):
            if _BLOCK_HEADER.search(f.rows[r]):
                return Diagnosis("this line is indented less than the text block it is in", f.start(row),
                                 f"every line of the block that starts on line {r + 1} is indented at least as "
                                 "much as its first line")
            break
    word = f.first_word(row, "the key")
    return Diagnosis("a line without 'key: ' where a key is expected", f.start(row),
                     f"a key ends with ':' and a space: is a ':' missing after {word}?")


def _colon_in_value(f: Fault) -> Diagnosis | None:
    """`send: RCPT TO: alice@x`: a second `: ` on a line whose key has already been read."""
    if f.problem != "mapping values are not allowed here":
        return None
    row = f.row(f.at)
    key = f.key(row)
    if not key or f.starts[row] + key.end() > f.at:
        return None
    value_at = f.starts[row] + key.end()
    word = f.named(f.text.rfind(" ", value_at, f.at) + 1 or value_at, f.at + 1, "the ':'")
    return Diagnosis("a value with ': ' in it must be quoted", f.at,
                     quote_advice(f, row, value_at, f"YAML reads {word} as the start of another key"))


def _continued(f: Fault) -> Diagnosis | None:
    """A `key:` read as the end of a value that began on a line above: that line is where the mistake is."""
    if f.problem != "mapping values are not allowed here":
        return None
    row = f.row(f.at)
    prev = f.above(row)
    if prev is None:
        return None
    bare = _NO_SPACE.match(f.rows[prev])
    if bare and not f.key(prev):
        colon = f.starts[prev] + bare.end("key")
        written = f.shown(f.starts[prev] + bare.start("key"), f.starts[prev] + bare.end("value"))
        fix = f" (write {bare['key']}: {bare['value']})" if written else ""
        return Diagnosis(f"no space after the ':' of '{bare['key']}'", colon,
                         f"a key ends with ':' and a space{fix}; without the space YAML reads the line as one word")
    key = f.key(prev)
    if key is None:
        word = f.first_word(prev, "the key")
        return Diagnosis("this line has no ':' after its key", f.start(prev),
                         f"a line of a mapping is 'key: value': is a ':' missing after {word}?")
    if f.indent(row) > f.key_col(prev) and f.content(row).startswith("-"):
        return Diagnosis(f"a list below '{key['key']}:', which has its value after the ':'", f.start(row),
                         f"a key's value goes after its ':' or on the lines below it, not both: to give "
                         f"'{key['key']}:' this list, leave nothing after its ':'")
    if f.indent(row) > f.key_col(prev):
        return Diagnosis("this line is indented more than the key above it", f.start(row),
                         f"'{key['key']}:' on line {prev + 1} has its value after the ':', so nothing can go below "
                         f"it: indent this line by {f.key_col(prev)} spaces to be a key beside it")
    return None


def _indented(f: Fault) -> Diagnosis | None:
    """A key that lines up with neither the keys above it nor those of the mapping around them."""
    if f.problem != "expected <block end>, but found '<block mapping start>'":
        return None
    row = f.row(f.at)
    prev = f.above(row)
    if prev is None:
        return None
    where, mine, theirs = f.start(row), f.indent(row), f.key_col(prev)
    side = "more" if mine > theirs else "less"
    key = f.key(prev)
    name = f"'{key['key']}:'" if key else "the line"
    hint = f"keys of one mapping start in the same column: indent it by {theirs} spaces to go with {name} on line " \
           f"{prev + 1}"
    for r in range(prev - 1, -1, -1):
        outer = f.key(r) if f.rows[r].strip() else None
        if outer and f.key_col(r) < mine and f.key_col(r) != theirs:
            hint += f", or by {f.key_col(r)} to go with '{outer['key']}:' on line {r + 1}"
            break
    return Diagnosis(f"this line is indented {side} than the key above it", where, hint)


def _missing_dash(f: Fault) -> Diagnosis | None:
    """A key where the list's next item should begin: the `- ` is missing."""
    if f.problem != "expected <block end>, but found '?'":
        return None
    row = f.row(f.at)
    mine = f.indent(row)
    for r in range(row - 1, -1, -1):
        if f.rows[r][mine:mine + 1] == "-" and f.indent(r) == mine:
            content = f.shown(f.start(row), f.starts[row] + len(f.rows[row]))
            item = f"'- {content}'" if content else "'- ' before it"
            return Diagnosis("a key where the list's next item ('- ') should begin", f.start(row),
                             f"each item of the list on line {r + 1} begins with '- ': write {item} to start a new "
                             f"item, or indent this line by {f.key_col(r)} spaces to add it to the item above")
    return None


def _stray_item(f: Fault) -> Diagnosis | None:
    """A `- ` item where a mapping's next key should be: at the wrong column, or in a mapping."""
    if f.problem != "expected <block end>, but found '-'":
        return None
    row = f.row(f.at)
    mine = f.col(f.at)
    first = f.row(f.context_at) if f.context_at is not None else 0
    for r in range(row - 1, first - 1, -1):
        if f.rows[r].lstrip().startswith("-") and f.indent(r) != mine:
            side = "more" if mine > f.indent(r) else "less"
            return Diagnosis(f"this list item is indented {side} than the one on line {r + 1}", f.at,
                             f"items of one list line up: put its '-' under the one on line {r + 1} "
                             f"({f.indent(r)} spaces); a list that is a key's value goes below a 'key:' with nothing "
                             "after its ':'")
    return Diagnosis("a list item ('- ') among the keys of a mapping", f.at,
                     "a mapping's lines are 'key: value': leave out the '- ', or, for a list, put the items below "
                     "a 'key:' with nothing after its ':'")


def _closes_nothing(f: Fault) -> Diagnosis | None:
    found = re.fullmatch(r"expected <block end>, but found '([]}])'", f.problem)
    if not found:
        return None
    return Diagnosis(f"a '{found[1]}' that closes nothing", f.at,
                     "remove it; if it is part of the text, quote the whole value")


def _after_value(f: Fault) -> Diagnosis | None:
    """Text after a value that ended early: a closing quote, or the '}' of `{{ var }}` read as a mapping."""
    if f.problem not in ("expected <block end>, but found '<scalar>'", "expected <block end>, but found '{'",
                         "expected <block end>, but found '['"):
        return None
    tokens = f.tokens()
    if not tokens:
        return None
    last = tokens[-1]
    if isinstance(last, ScalarToken) and last.style in ("'", '"'):
        return _after_quote(f, last)
    if isinstance(last, (FlowMappingEndToken, FlowSequenceEndToken)):
        opened = _opening(tokens)
        row = f.row(opened)
        if f.text.startswith("{{", opened):
            return Diagnosis("a value that starts with '{{' must be quoted", opened,
                             quote_advice(f, row, opened, "YAML reads '{' as the start of a mapping"))
        close = f.text[last.start_mark.index]
        return Diagnosis(f"text after the closing '{close}'", f.at,
                         quote_advice(f, row, opened, f"a value that starts with '{f.text[opened]}' is a "
                                                       f"{'list' if close == ']' else 'mapping'} to YAML"))
    return None


def _after_quote(f: Fault, value: ScalarToken) -> Diagnosis:
    quote, start = value.style, value.start_mark.index
    closed = f.row(value.end_mark.index) + 1
    if closed != f.row(start) + 1:
        return Diagnosis(f"this {quote} is closed only on line {closed}", start,
                         f"end the value with {quote} on this line: the {quote} on line {closed} closed it instead")
    other = "'" if quote == '"' else '"'
    extra = " or double it ('it''s')" if quote == "'" else ""
    return Diagnosis("text after the closing quote", f.at,
                     f"a value in quotes ends at its closing {quote}: to put a {quote} inside it, write the value "
                     f"between {other} quotes{extra}")


def _opening(tokens: list[Token]) -> int:
    """Where the outermost '[' or '{' closed by the last token opened."""
    depth = 0
    for token in reversed(tokens):
        if isinstance(token, (FlowMappingEndToken, FlowSequenceEndToken)):
            depth += 1
        elif isinstance(token, (FlowMappingStartToken, FlowSequenceStartToken)):
            depth -= 1
            if depth == 0:
                return token.start_mark.index
    return tokens[-1].start_mark.index


def _flow(f: Fault) -> Diagnosis | None:
    """Inside `[...]` or `{...}`: never closed, closed by the other bracket, or a `: ` in a value."""
    found = re.match(r"expected ',' or '[]}]', but got '(.+)'", f.problem)
    if not (found and f.context.startswith("while parsing a flow") and f.context_at is not None):
        return None
    opened, got = f.text[f.context_at], found[1]
    close = _CLOSE.get(opened, "]")
    if got in ("]", "}"):
        return Diagnosis(f"'{opened}' closed by '{got}'", f.at, "close a '[' with ']' and a '{' with '}'")
    if got == ":" and f.row(f.at) == f.row(f.context_at):
        return _flow_colon(f, opened, close)
    where = "the end of the file" if got == "<stream end>" else f"line {f.row(f.at) + 1}"
    return Diagnosis(f"this '{opened}' is never closed", f.context_at,
                     f"close it with '{close}' on this line: YAML read on to {where} looking for it")


def _flow_colon(f: Fault, opened: str, close: str) -> Diagnosis:
    """`{code: 250 text: x}` (a ',' missing) or `{text: a: b}` (a ': ' in a value that is not quoted)."""
    message = f"a ':' inside '{opened}...{close}' where YAML expects ',' or '{close}'"
    scalars = [t for t in f.tokens() if isinstance(t, ScalarToken)]
    value = scalars[-1] if scalars else None
    if value is not None and not value.style and " " in value.value:
        word = f.named(f.text.rfind(" ", 0, f.at) + 1, f.at, "the key")
        return Diagnosis(message, f.at, f"entries between '{opened}' and '{close}' are separated by ', ': is a ',' "
                                         f"missing before {word}?")
    start = value.start_mark.index if value is not None else f.at
    end = min((i for i in (f.text.find(",", f.at), f.text.find(close, f.at)) if i >= 0), default=None)
    word = f.named(f.text.rfind(" ", start, f.at) + 1 or start, f.at + 1, "the ':'")
    return Diagnosis(message, f.at, quote_advice(f, f.row(f.at), start, f"YAML reads {word} as a key", end))


def _flow_gap(f: Fault) -> Diagnosis | None:
    """`[a, , b]`, or a `[` or `{` the file ends inside of."""
    if f.context != "while parsing a flow node":
        return None
    if f.problem.endswith("found ','"):
        return Diagnosis("a ',' with no value before it", f.at,
                         "remove the extra ','; an empty value is written '' (or null)")
    if f.problem.endswith("found '-'"):
        return Diagnosis("a '- ' list item inside '[...]' or '{...}'", f.at,
                         "between brackets a list is written [a, b], without '- '")
    unclosed: list[int] = []
    for token in f.tokens():
        if isinstance(token, (FlowSequenceStartToken, FlowMappingStartToken)):
            unclosed.append(token.start_mark.index)
        elif isinstance(token, (FlowSequenceEndToken, FlowMappingEndToken)) and unclosed:
            unclosed.pop()
    if f.problem.endswith("'<stream end>'") and unclosed:
        at = unclosed[-1]
        return Diagnosis(f"this '{f.text[at]}' is never closed", at,
                         f"close it with '{_CLOSE[f.text[at]]}': YAML read on to the end of the file looking for it")
    return None


def _item_after_key(f: Fault) -> Diagnosis | None:
    """`keywords: - PIPELINING`: a list item on its key's line."""
    if f.problem != "sequence entries are not allowed here":
        return None
    return Diagnosis("a list item ('- ') cannot start on the line of its key", f.at,
                     "put each '- item' on a line of its own below the key, indented, or write the list as [a, b]")


def _second_document(f: Fault) -> Diagnosis | None:
    if f.context != "expected a single document in the stream":
        return None
    return Diagnosis("a second YAML document starts here", f.at,
                     "a plan is one YAML document: remove this '---' line (a second plan goes in a file of its own)")


def _generic(f: Fault) -> Diagnosis:
    words = (f.problem or f.context).replace("the node content", "a value")
    for token, said in _TOKEN_WORDS.items():
        words = words.replace(f"'{token}'", said).replace(token, said)
    at = f.at
    row = f.row(at)
    if not f.rows[row][f.col(at):].strip():  # at the end of a line or of the file: the mistake is before it
        prev = row if f.rows[row].strip() else f.above(row)
        at = f.start(prev) if prev is not None else at
    hint = "YAML indents with spaces, never tabs" if "\t" in f.rows[f.row(at)][:f.key_col(f.row(at)) + 1] \
        else GENERIC_HINT
    return Diagnosis(words, at, hint)


def unquoted_template(text: str, index: int, overlaps: Overlaps = lambda a, b: False) -> Diagnosis:
    """`send: {{ helo }}` reads as a mapping whose key is a mapping: the value at `index` wanted quotes."""
    f = Fault(None, text, overlaps)
    return Diagnosis("a value that starts with '{{' must be quoted", index,
                     quote_advice(f, f.row(index), index, "YAML reads '{' as the start of a mapping"))


RULES = (_tab, _reserved_start, _escape, _unclosed_quote, _block_header, _no_colon, _colon_in_value, _continued,
         _indented, _missing_dash, _stray_item, _closes_nothing, _after_value, _flow, _flow_gap, _item_after_key,
         _second_document)


def explain(exc: yaml.MarkedYAMLError, text: str, overlaps: Overlaps = lambda a, b: False) -> Diagnosis:
    """What went wrong, where the mistake is (not where PyYAML gave up), and how to write it instead."""
    fault = Fault(exc, text, overlaps)
    for rule in RULES:
        found = rule(fault)
        if found is not None:
            return found
    return _generic(fault)
