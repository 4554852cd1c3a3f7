"""Read a plan file into plain data, remembering where every key and value stands.

YAML is composed with PyYAML's safe machinery and built by hand, so that: only the plain data
tags are accepted (no `!!python/...`), a key repeated in one mapping is an error, alias
expansion is bounded (a "billion laughs" file fails fast), and every value keeps its line and
column for compiler-style messages.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner.errors import Location, PlanError, Problem
from runner.files import read_regular
from runner.redact import MASK, Redactor
from runner.text import CONTROLS, printable

__all__ = ["MAX_NODES", "MAX_PLAN_BYTES", "Hidden", "Loaded", "Source", "Unreadable", "load_file", "load_text",
           "plans_in"]

MAX_PLAN_BYTES = 1024 * 1024  # a plan is a page of steps; a megabyte is far past any real one
MAX_NODES = 200_000  # values after alias expansion: bounds memory against alias bombs
MAX_DEPTH = 64

Path_ = tuple[Any, ...]

_T = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"}
_TEXT_TAGS = {_T + "timestamp"}  # an implicit date stays the text it was written as
_MERGE = _T + "merge"


PASSWORD_KEYS = frozenset({"password"})  # auth: {password: ...}, vars: {password: ...}: never shown


@dataclass(frozen=True)
class Hidden:
    """What no excerpt of a plan shows: the values of `password:` keys and of the variables a
    `secrets:` list names (found by position, however YAML spells them), and every value holding
    a secret given on the command line."""

    names: frozenset[str] = PASSWORD_KEYS
    values: tuple[str, ...] = ()

    def widened(self, names: Iterable[str]) -> Hidden:
        return Hidden(self.names | frozenset(names), self.values)


@dataclass
class Source:
    """A plan file's name (as the user gave it) and text, and what of it may be shown.

    Lines and columns count as an editor does: a line ends at LF (a CRLF's CR is not shown), and
    no other character (NEL, U+2028) starts a new one, whatever YAML itself calls a line break.
    """

    name: str
    text: str
    hide: Hidden = field(default_factory=Hidden)
    excerpts: bool = True  # False for a file that is not a plan (not YAML, not a mapping): no line of it is shown
    hidden: list[tuple[int, int]] = field(default_factory=list)  # character spans of secrets in `text`
    lines: list[str] = field(init=False)
    _starts: list[int] = field(init=False, repr=False)
    _redactor: Redactor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.lines = [line.removesuffix("\r") for line in self.text.split("\n")]
        self._starts = [0]
        for line in self.text.split("\n")[:-1]:
            self._starts.append(self._starts[-1] + len(line) + 1)
        self._redactor = Redactor()
        for value in self.hide.values:
            self._redactor.add(value, encoded=False)

    def position(self, index: int) -> tuple[int, int]:
        """1-based line and column of the character at `index`."""
        line = bisect.bisect_right(self._starts, index)
        return line, index - self._starts[line - 1] + 1

    def hide_span(self, start: int, end: int, value: str | None = None) -> None:
        self.hidden.append((start, end))
        if value:
            self._redactor.add(value, encoded=False)

    def overlaps_hidden(self, start: int, end: int) -> bool:
        return any(a < end and start < b for a, b in self.hidden) or self._redactor.text(self.text[start:end]) != \
            self.text[start:end]

    def hide_text(self, value: str) -> None:
        """A secret found as the plan is checked (a password written into a URL): masked wherever it is."""
        at = self.text.find(value) if value else -1
        while at >= 0:
            self.hide_span(at, at + len(value), value)
            at = self.text.find(value, at + len(value))

    def problem(self, message: str, line: int | None, col: int = 1, hint: str | None = None) -> Problem:
        message, hint = self._safe(message), hint and self._safe(hint)
        if line is None:
            return Problem(message, Location(self.name, 1, 1), hint)
        if not (self.excerpts and 0 < line <= len(self.lines)):
            return Problem(message, Location(self.name, line, col), hint)
        shown, caret = self._excerpt(line, col)
        return Problem(message, Location(self.name, line, col), hint, shown, caret=caret)

    def _safe(self, text: str) -> str:
        return printable(text, CONTROLS, redact=self._redactor.text)

    def _excerpt(self, line: int, col: int) -> tuple[str, int]:
        """The line as shown, secrets masked and controls escaped, and the caret's column in it."""
        start, raw = self._starts[line - 1], self.lines[line - 1]
        spans: list[list[int]] = []
        for a, b in sorted(self.hidden):
            a, b = max(a - start, 0), min(b - start, len(raw))
            if a >= b:
                continue
            if spans and a <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], b)
            else:
                spans.append([a, b])
        shown, at, caret, want = "", 0, None, col - 1
        for a, b in [*spans, [len(raw), len(raw)]]:
            if caret is None and want < a:
                caret = len(shown) + len(self._safe(raw[at:want]))
            shown += self._safe(raw[at:a])
            if b > a:
                if caret is None and want < b:
                    caret = len(shown)
                shown += MASK
            at = b
        return shown, (len(shown) if caret is None else caret) + 1


@dataclass
class Loaded:
    data: Any
    source: Source
    marks: dict[Path_, tuple[int, int]]  # path of a value -> (line, col) of the value
    key_marks: dict[Path_, tuple[int, int]]  # path of a value -> (line, col) of its key
    kind: str = "plan"  # what the file is, in messages about it as a whole: "plan" or "included file"

    def under(self, key: str) -> Loaded:
        """The same file with its data as the value of `key`: a bare list of steps as `steps:`."""
        def moved(table: dict[Path_, tuple[int, int]]) -> dict[Path_, tuple[int, int]]:
            return {(key, *path): pos for path, pos in table.items()}

        return Loaded({key: self.data}, self.source, {(): (1, 1), **moved(self.marks)}, moved(self.key_marks),
                      self.kind)

    def where(self, path: Path_, key: bool = False) -> tuple[int, int] | None:
        """The closest known position to `path` (a missing item points at its parent)."""
        table = self.key_marks if key else self.marks
        p = tuple(path)
        while True:
            if p in table:
                return table[p]
            if p in self.marks:
                return self.marks[p]
            if not p:
                return None
            p = p[:-1]

    def problem(self, message: str, path: Path_, key: bool = False, hint: str | None = None) -> Problem:
        pos = self.where(path, key)
        return self.source.problem(message, *(pos or (None, 1)), hint=hint)


def plans_in(folder: str | Path) -> list[Path]:
    """The plans of a folder: every *.yaml file directly inside it, sorted, but for those that are a bare
    list of steps (a file to include, not a plan). Subfolders (plans/common/) are not looked into."""
    found = []
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            head = read_regular(path, 4096)
        except OSError:
            found.append(path)  # read_plan says why it cannot be read
            continue
        if not _is_step_list(head.decode("utf-8", "replace")):
            found.append(path)
    return found


def _is_step_list(text: str) -> bool:
    """Whether a YAML text's first value is a block sequence (`- expect: 220`)."""
    for line in text.removeprefix("\ufeff").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "%", "---")):
            return stripped.startswith("- ") or stripped == "-"
    return False


class Unreadable(PlanError):
    """The file could not be read at all (missing, a folder, no permission): `reason` says why."""

    def __init__(self, problem: Problem, reason: str) -> None:
        super().__init__(problem)
        self.reason = reason


def load_file(path: str | Path, display: str | None = None, kind: str = "plan",
              hide: Hidden | None = None) -> Loaded:
    """A plan file (or, with kind "included file", a file of steps) read and composed, or PlanError."""
    name = display or str(path)
    try:
        raw = read_regular(path, MAX_PLAN_BYTES)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise Unreadable(Problem(f"cannot read {kind}: {reason}", Location(name, 1, 1)), reason) from None
    if len(raw) > MAX_PLAN_BYTES:
        what = "plan file" if kind == "plan" else kind
        raise PlanError(Problem(f"{what} is larger than {MAX_PLAN_BYTES} bytes", Location(name, 1, 1)))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PlanError(
            Problem(f"{kind} is not UTF-8: invalid byte 0x{raw[exc.start]:02x} at offset {exc.start}",
                    Location(name, line, col))
        ) from None
    return load_text(text.removeprefix("\ufeff"), name, kind, hide)


def load_text(text: str, name: str = "<plan>", kind: str = "plan", hide: Hidden | None = None) -> Loaded:
    source = Source(name, text, hide or Hidden(), excerpts=False)  # no line of it is shown until it is YAML
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:  # PyYAML's parser recurses once per level of nesting
        raise PlanError(source.problem(f"{kind} is nested deeper than {MAX_DEPTH} levels", None)) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, e.g. NUL
        line, col = source.position(exc.position)
        message = f"character {exc.character!r} is not allowed in {_a(kind)}"
        raise PlanError(source.problem(message, line, col)) from None
    except yaml.MarkedYAMLError as exc:
        raise PlanError(_syntax_problem(exc, source, kind)) from None
    except yaml.YAMLError as exc:
        raise PlanError(source.problem(f"YAML: {exc}", None)) from None
    # a plan, or meant to be one (an included file may be a bare list of steps): its lines may be shown,
    # secrets masked
    if isinstance(node, MappingNode) or (kind != "plan" and isinstance(node, SequenceNode)):
        source.excerpts = True
        _hide_secrets(node, source)
    builder = _Builder(source, kind)
    data = builder.build(node, ()) if node is not None else None
    return Loaded(data, source, builder.marks, builder.key_marks, kind)


def _syntax_problem(exc: yaml.MarkedYAMLError, source: Source, kind: str) -> Problem:
    """A YAML syntax error on the line where the mistake is, with a hint; the line is shown only for a file meant
    as YAML, secrets masked as far as the broken file can be read."""
    from runner.plan.broken import meant_as_yaml, secret_names, secret_spans  # only for a file YAML cannot read
    from runner.plan.syntax import explain

    source.excerpts = meant_as_yaml(source.text, source.name, kind)
    mark = exc.problem_mark or exc.context_mark
    upto = source.text.find("\n", mark.index) if mark else -1
    names = source.hide.names | secret_names(source.text)
    for start, end in secret_spans(source.text, names, upto if upto >= 0 else len(source.text)):
        source.hide_span(start, end)
    found = explain(exc, source.text, source.overlaps_hidden)
    return source.problem(f"YAML syntax: {found.message}", *source.position(found.index), hint=found.hint)


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _secret_names(root: MappingNode | SequenceNode) -> set[str]:
    """The names a plan's top-level `secrets:` list gives (a bare list of steps gives none)."""
    if not isinstance(root, MappingNode):
        return set()
    return {item.value for key, value in root.value if isinstance(key, ScalarNode) and key.value == "secrets"
            and isinstance(value, SequenceNode) for item in value.value if isinstance(item, ScalarNode)}


def _hide_secrets(root: MappingNode | SequenceNode, source: Source) -> None:
    """Mark where secrets stand, walking the composed nodes once each (aliases are shared nodes)."""
    hide = source.hide = source.hide.widened(_secret_names(root))
    stack: list[Node] = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.value in hide.names:
                    source.hide_span(value.start_mark.index, value.end_mark.index,
                                     value.value if isinstance(value, ScalarNode) else None)
                stack += (key, value)
        elif isinstance(node, SequenceNode):
            stack += node.value
        elif isinstance(node.value, str) and any(secret in node.value for secret in hide.values):
            source.hide_span(node.start_mark.index, node.end_mark.index)


class _Builder:
    def __init__(self, source: Source, kind: str = "plan") -> None:
        self.source, self.kind = source, kind
        self.marks: dict[Path_, tuple[int, int]] = {}
        self.key_marks: dict[Path_, tuple[int, int]] = {}
        self.count = 0
        self.constructor = yaml.SafeLoader("")

    def _pos(self, node: Node) -> tuple[int, int]:
        return self.source.position(node.start_mark.index)

    def fail(self, message: str, node: Node, hint: str | None = None) -> PlanError:
        return PlanError(self.source.problem(message, *self._pos(node), hint=hint))

    def build(self, node: Node, path: Path_, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(f"{self.kind} expands to more than {MAX_NODES} values (alias expansion?)", node)
        if depth > MAX_DEPTH:
            raise self.fail(f"{self.kind} is nested deeper than {MAX_DEPTH} levels", node)
        self.marks.setdefault(path, self._pos(node))
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            if node.tag != _T + "seq":
                raise self._bad_tag(node)
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _bad_tag(self, node: Node) -> PlanError:
        tag = node.tag.replace(_T, "!!")
        return self.fail(f"YAML tag {tag} is not allowed: {_a(self.kind)} holds plain data only", node)

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag in _TEXT_TAGS:
            return node.value
        if node.tag not in _SCALAR_TAGS:
            raise self._bad_tag(node)
        try:
            return self.constructor.construct_object(node)
        except yaml.YAMLError as exc:
            raise self.fail(f"bad value: {exc}", node) from None

    def _complex_key(self, node: MappingNode, key: Node) -> PlanError:
        if self.source.text.startswith("{{", node.start_mark.index):  # `send: {{ helo }}`: a template, unquoted
            from runner.plan.syntax import unquoted_template

            found = unquoted_template(self.source.text, node.start_mark.index, self.source.overlaps_hidden)
            return PlanError(self.source.problem(found.message, *self.source.position(found.index), hint=found.hint))
        return self.fail("a mapping key must be a plain name, not a list or mapping", key)

    def _pairs(self, node: MappingNode) -> Iterator[tuple[Node, Node]]:
        """Key/value nodes, with YAML merge keys (`<<: *base`) expanded; explicit keys win."""
        explicit = [(k, v) for k, v in node.value if k.tag != _MERGE]
        explicit_keys = {k.value for k, _ in explicit if isinstance(k, ScalarNode)}
        merged: list[tuple[Node, Node]] = []
        seen: set[Any] = set()
        for k, v in node.value:
            if k.tag != _MERGE:
                continue
            sources = v.value if isinstance(v, SequenceNode) else [v]
            for src in sources:
                if not isinstance(src, MappingNode):
                    raise self.fail("a merge key (<<) takes a mapping or a list of mappings", src)
                for mk, mv in self._pairs(src):
                    self.count += 1  # merges of merges grow like aliases do: bound them alike
                    if self.count > MAX_NODES:
                        raise self.fail(f"{self.kind} expands to more than {MAX_NODES} values (merge keys)", src)
                    if mk.value not in explicit_keys and mk.value not in seen:
                        seen.add(mk.value)
                        merged.append((mk, mv))
        yield from merged
        yield from explicit

    def _mapping(self, node: MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        if node.tag != _T + "map":
            raise self._bad_tag(node)
        out: dict[str, Any] = {}
        for knode, vnode in self._pairs(node):
            if not isinstance(knode, ScalarNode):
                raise self._complex_key(node, knode)
            key = self._scalar(knode)
            if not isinstance(key, str):
                key = knode.value
            if key in out:
                line, _ = self.key_marks[(*path, key)]
                hint = "a mapping holds each key once" + (
                    ": if this line starts the next item of the list, begin it with '- '" if path and
                    isinstance(path[-1], int) else ": remove one of the two, or merge them")
                raise self.fail(f"duplicate key '{key}' (first given on line {line})", knode, hint)
            self.key_marks[(*path, key)] = self._pos(knode)
            out[key] = self.build(vnode, (*path, key), depth + 1)
        return out
