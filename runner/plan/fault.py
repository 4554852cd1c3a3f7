"""A YAML error and the text it is about: the line arithmetic and the quoting the syntax rules share."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable

import yaml
from yaml.tokens import Token

__all__ = ["Fault", "Overlaps", "quote_advice", "rewritten"]

Overlaps = Callable[[int, int], bool]  # whether text[a:b] holds a secret: such text is never put in a hint

_KEY = re.compile(r"""[ ]*(?:-[ ]+)*(?P<key>"[^"]*"|'[^']*'|[^\s:#'"\[\]{}-][^:#]*?)[ ]*:(?:[ ]+|$)""")


class Fault:
    """The error and the text it is about, with the line arithmetic the rules share (rows count from 0)."""

    def __init__(self, exc: yaml.MarkedYAMLError | None, text: str, overlaps: Overlaps) -> None:
        self.text, self.overlaps = text, overlaps
        self.problem, self.context = (exc.problem or "", exc.context or "") if exc else ("", "")
        mark = exc and (exc.problem_mark or exc.context_mark)
        self.at = min(mark.index, len(text)) if mark else 0
        self.context_at = min(exc.context_mark.index, len(text)) if exc and exc.context_mark else None
        self.rows = [row.removesuffix("\r") for row in text.split("\n")]
        self.starts = [0]
        for row in text.split("\n")[:-1]:
            self.starts.append(self.starts[-1] + len(row) + 1)

    def row(self, index: int) -> int:
        return bisect.bisect_right(self.starts, index) - 1

    def col(self, index: int) -> int:
        return index - self.starts[self.row(index)]

    def start(self, row: int) -> int:
        """The index of a row's first character that is not a space."""
        return self.starts[row] + self.indent(row)

    def indent(self, row: int) -> int:
        return len(self.rows[row]) - len(self.rows[row].lstrip(" "))

    def key(self, row: int) -> re.Match[str] | None:
        return _KEY.match(self.rows[row])

    def key_col(self, row: int) -> int:
        """Where a row's key (or value) starts: after its indentation and any `- `."""
        return re.match(r"[ ]*(?:-[ ]+)*", self.rows[row]).end()  # type: ignore[union-attr]

    def above(self, row: int) -> int | None:
        """The nearest row before `row` that holds more than a comment."""
        for r in range(row - 1, -1, -1):
            if self.rows[r].strip() and not self.rows[r].lstrip().startswith("#"):
                return r
        return None

    def content(self, row: int) -> str:
        return self.rows[row].strip()

    def shown(self, a: int, b: int) -> str | None:
        """text[a:b] for a hint, or None when it holds a secret."""
        return None if self.overlaps(a, b) else self.text[a:b]

    def named(self, a: int, b: int, otherwise: str) -> str:
        """text[a:b] in quotes, to name it in a message; `otherwise` when it holds a secret."""
        shown = self.shown(a, b)
        return f"'{shown}'" if shown else otherwise

    def first_word(self, row: int, otherwise: str) -> str:
        """The first word of a row, after its indentation and any `- `, named as `named` does."""
        start = self.starts[row] + self.key_col(row)
        end = start + len(self.text[start:].split("\n", 1)[0].split(" ", 1)[0].rstrip("\r"))
        return self.named(start, end, otherwise)

    def tokens(self) -> list[Token]:
        """The tokens before the error (a parser error comes after the scanner read them all)."""
        found: list[Token] = []
        try:
            for token in yaml.scan(self.text, Loader=yaml.SafeLoader):
                if token.start_mark.index >= self.at:
                    break
                found.append(token)
        except yaml.YAMLError:
            pass
        return found


def _quoted(value: str) -> str:
    """`value` as a YAML string that reads back as itself."""
    if '"' not in value and "\\" not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rewritten(f: Fault, row: int, value_at: int, end: int | None = None) -> str | None:
    """Row `row` as written from its key on, with the value from `value_at` (to the comment or `end`) quoted."""
    line_end = f.starts[row] + len(f.rows[row])
    stop = end if end is not None else line_end
    comment = f.text.find(" #", value_at, stop)
    stop = comment if comment >= 0 else stop
    value, head = f.shown(value_at, stop), f.shown(f.start(row), value_at)
    if value is None or head is None:
        return None
    return head + _quoted(value.rstrip()) + (f.shown(stop, line_end) or "").rstrip()


def quote_advice(f: Fault, row: int, value_at: int, why: str, end: int | None = None) -> str:
    fixed = rewritten(f, row, value_at, end)
    return f"{why}: quote the whole value: {fixed}" if fixed else f"{why}: put the whole value in quotes"
