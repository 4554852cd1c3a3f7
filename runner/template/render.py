"""Plan strings as templates: Jinja2 in a sandbox, with a fast path for plain substitution.

A plan is data and never runs code. Most plan strings are plain text or `{{ name }}` /
`{{ name.key }}` substitutions; those are rendered here directly, with the sandbox's rules
(no names starting with "_"), so a typical plan never loads Jinja2. Anything else goes to
the sandbox in runner.template.sandbox.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from runner.errors import OutputTooLarge, RenderError

__all__ = ["ENVIRON", "MAX_BODY", "MAX_VALUE", "MAX_VALUES", "OutputTooLarge", "RenderError", "check_structure",
           "env_refs", "evaluate", "is_template", "names_used", "preview", "render"]

# What a plan string may render to. A step's body (send, raw, data, bdat) may be large, and is
# rendered under the run's budget (runner/run/budget.py), so cases at once cannot multiply it;
# every other string (a variable, a name, a regex, a credential) is small, and kept for a case's life.
MAX_BODY = 64 * 1024 * 1024
MAX_VALUE = 1024 * 1024
MAX_VALUES = 4 * MAX_VALUE  # all of a plan's rendered variables together (and a case's, or an include's)

# Values a template may always use besides plan variables and captures.
BUILTIN_NAMES = frozenset({"env", "ehlo", "message_id"})

_NAME = r"[A-Za-z][A-Za-z0-9_]*"
_SIMPLE = re.compile(r"\{\{\s*(" + _NAME + r")(?:\.(" + _NAME + r"))?\s*\}\}")


class _Env(Mapping[str, str]):
    """os.environ, read-only, by name only: a plan passed around must not list the environment
    (`{{ env|dictsort }}` would send every token the user has to the server)."""

    def __getitem__(self, key: str) -> str:
        return os.environ[key]

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


ENVIRON = _Env()


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


_LITERALS = frozenset({"true", "false", "none", "True", "False", "None"})


def _simple(text: str) -> list[re.Match[str]] | None:
    """The placeholders of a plain-substitution template, or None when it needs Jinja2."""
    if "{%" in text or "{#" in text:
        return None
    found = list(_SIMPLE.finditer(text))
    if any(m[1] in _LITERALS for m in found):  # `{{ false }}` is a value, not a name
        return None
    rest = _SIMPLE.sub("", text)
    return None if "{{" in rest or "}}" in rest else found


def _value(match: re.Match[str], variables: Mapping[str, Any]) -> str:
    name, key = match[1], match[2]
    if name not in variables:
        raise RenderError(f"template: '{name}' is undefined")
    value = variables[name]
    if key is not None:
        if not isinstance(value, Mapping) or key not in value:
            raise RenderError(f"template: '{name}' has no attribute '{key}'")
        value = value[key]
    return str(value)


def render(text: str, variables: Mapping[str, Any], limit: int = MAX_VALUE) -> str:
    """Render one plan string, OutputTooLarge past `limit` characters. Plain strings come back
    untouched, at no cost."""
    if not is_template(text):
        return text
    found = _simple(text)
    if found is not None:
        values = [_value(m, variables) for m in found]  # each already in memory: only the sum is new
        if len(text) + sum(len(v) for v in values) > limit:
            raise OutputTooLarge(limit)
        it = iter(values)
        return _SIMPLE.sub(lambda _m: next(it), text)
    from runner.template import sandbox

    return sandbox.render(text, variables, limit)


PREVIEW_LIMIT = 4096  # characters a step that never ran may show in its label


def preview(text: str, variables: Mapping[str, Any]) -> str:
    """What a plan string will look like, before it runs: the placeholders `variables` settle rendered, the
    others (a capture not yet made) kept as written. A template beyond plain substitution is rendered whole
    if it comes to a label's size (PREVIEW_LIMIT), else kept as written, as when any name it needs is missing:
    a label is no reason to hold megabytes a loop renders (the step renders it, bounded, when it runs)."""
    if not is_template(text):
        return text
    if _simple(text) is None:
        try:
            return render(text, variables, PREVIEW_LIMIT)
        except (RenderError, OutputTooLarge):
            return text

    def one(match: re.Match[str]) -> str:
        try:
            return _value(match, variables)
        except RenderError:
            return match[0]

    return _SIMPLE.sub(one, text)


def evaluate(expression: str, variables: Mapping[str, Any]) -> Any:
    """The value of a Jinja2 expression (a `when:` condition), in the sandbox."""
    from runner.template import sandbox

    return sandbox.evaluate(expression, variables)


def names_used(text: str) -> set[str]:
    """Top-level names a template reads. Raises RenderError on bad syntax."""
    found = _simple(text)
    if found is not None:
        return {m[1] for m in found}
    from runner.template import sandbox

    return sandbox.names_used(text)


def env_refs(text: str) -> set[str]:
    """Environment variables named as `env.NAME` or `env['NAME']` in a template."""
    found = _simple(text)
    if found is not None:
        return {m[2] for m in found if m[1] == "env" and m[2]}
    from runner.template import sandbox

    return sandbox.env_refs(text)


def check_structure(text: str) -> str | None:
    """Why a template's shape is refused (nested loops, macros), or None."""
    if _simple(text) is not None:
        return None
    from runner.template import sandbox

    return sandbox.check_structure(text)
