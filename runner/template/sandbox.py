"""The Jinja2 side of plan templates: a bounded sandbox, compiled templates, and their names.

Imported only when a plan string needs more than plain `{{ name }}` substitution.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from runner.errors import OutputTooLarge, RenderError
from runner.limits import TimeBoundExceeded, memory_bound, time_bound

__all__ = ["check_structure", "env_refs", "evaluate", "names_used", "render"]

# A plan is untrusted text: besides the sandbox's attribute rules, these bound what one template
# may cost, so a plan cannot hang the runner or exhaust its memory while it is rendered.
MAX_SIZE = 1_000_000  # characters or items a multiplication, padding or format width may produce
MAX_EXPONENT = 256
_WIDTH = re.compile(r"%[-+ #0]*(\d+)|\{[^{}]*?:[^{}]*?(\d{4,})")


class PlanSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with bounded arithmetic, padding and formatting."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is over {MAX_EXPONENT}")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_SIZE:
                    raise SecurityError(f"repetition to more than {MAX_SIZE} items")
        if operator == "%" and isinstance(left, str):
            _check_widths(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_args(args, kwargs)
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        if getattr(method, "__name__", "") in ("format", "format_map") and isinstance(
                getattr(method, "__self__", None), str):
            _check_widths(method.__self__)
        return super().call(__context, __obj, *args, **kwargs)


def _check_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SIZE:
            raise SecurityError(f"argument {value} is over {MAX_SIZE}")


def _check_widths(fmt: str) -> None:
    for m in _WIDTH.finditer(fmt):
        width = int(m[1] or m[2])
        if width > MAX_SIZE:
            raise SecurityError(f"format width {width} is over {MAX_SIZE}")


def _bounded(f: Any) -> Any:
    def filter_(*args: Any, **kwargs: Any) -> Any:
        _check_args(args[1:], kwargs)
        if f.__name__ in ("do_format",) and args and isinstance(args[0], str):
            _check_widths(args[0])
        return f(*args, **kwargs)

    for attr in ("jinja_pass_arg", "__name__"):
        if hasattr(f, attr):
            setattr(filter_, attr, getattr(f, attr))
    return filter_


@lru_cache(maxsize=1)
def environment() -> PlanSandbox:
    env = PlanSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters = {name: _bounded(f) for name, f in env.filters.items()}
    env.globals.pop("lipsum", None)  # generates text of any size: nothing a plan needs
    env.filters["regex_escape"] = re.escape  # a captured value used inside a `text:` regex
    return env


def check_structure(text: str) -> str | None:
    """Why a template's shape is refused (nested loops, macros, recursion), or None.

    A loop's range is bounded by the sandbox; loops inside loops multiply that bound, and macros
    can recurse, so neither has a place in a plan string.
    """
    ast = _parse(text)
    for loop in ast.find_all(nodes.For):
        if loop.recursive or next(iter(loop.body and nodes.Template(loop.body).find_all(nodes.For)), None):
            return "nested or recursive loops are not allowed in plan templates"
    if next(iter(ast.find_all((nodes.Macro, nodes.CallBlock))), None) is not None:
        return "macros are not allowed in plan templates"
    return None


@lru_cache(maxsize=1024)
def _compile(text: str) -> Any:
    return environment().from_string(text)


RENDER_SECONDS = 2.0  # a plan string renders in microseconds; this only stops a template built to spin
RENDER_MEMORY = 512 * 1024 * 1024  # address space one rendering may add


# Jinja2's lexer turns every CR and CRLF in a template into LF; a plan's `raw:` bytes must survive it.
# In text, each CR becomes a stand-in no plan, variable or server can contain (a per-process nonce),
# put back after rendering; inside {{ }} / {% %} a CR can only matter in a string literal, where
# it is written as the escape \r.
_CR = f"\U0010fffd{secrets.token_hex(8)}\U0010fffd"
_TAG = re.compile(r"(\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\})", re.S)


def _protect_cr(text: str) -> str:
    if "\r" not in text:
        return text
    parts = _TAG.split(text)  # text, tag, text, tag, ...
    return "".join(p.replace("\r", "\\r") if i % 2 else p.replace("\r", _CR) for i, p in enumerate(parts))


@contextlib.contextmanager
def _sandboxed(what: str) -> Iterator[None]:
    """Run plan code under the time and memory bounds; every way it can fail becomes a RenderError."""
    try:
        with time_bound(RENDER_SECONDS), memory_bound(RENDER_MEMORY):
            yield
    except RenderError:  # already in the plan's words (OutputTooLarge)
        raise
    except TimeBoundExceeded:
        raise RenderError(f"{what} took longer than {RENDER_SECONDS:g}s", forbidden=True) from None
    except MemoryError:
        raise RenderError(f"{what} needs more than {RENDER_MEMORY >> 20} MB", forbidden=True) from None
    except SecurityError as exc:
        raise RenderError(f"{what} tried a forbidden operation: {exc}", forbidden=True) from None
    except UndefinedError as exc:
        raise RenderError(f"{what}: {exc}") from None
    except TemplateSyntaxError as exc:
        raise RenderError(f"{what} syntax: {exc.message}") from None
    except Exception as exc:  # plan code in a sandbox: any failure is the plan's
        raise RenderError(f"{what} failed: {type(exc).__name__}: {exc}") from None


def render(text: str, variables: Mapping[str, Any], limit: int) -> str:
    """The template rendered, or OutputTooLarge as soon as its output passes `limit` characters."""
    with _sandboxed("template"):
        out: list[str] = []
        size = 0
        for piece in _compile(_protect_cr(text)).generate(variables):
            size += len(piece)
            if size > limit:
                raise OutputTooLarge(limit)
            out.append(piece)
        return "".join(out).replace(_CR, "\r")


@lru_cache(maxsize=256)
def _compile_expression(text: str) -> Any:
    return environment().compile_expression(text)


def evaluate(expression: str, variables: Mapping[str, Any]) -> Any:
    with _sandboxed("expression"):
        return _compile_expression(expression.replace("\r", "\\r"))(**variables)


def _parse(text: str) -> Any:
    try:
        return environment().parse(text)
    except TemplateSyntaxError as exc:
        raise RenderError(f"template syntax: {exc.message}") from None


def names_used(text: str) -> set[str]:
    """Top-level names a template reads."""
    return set(meta.find_undeclared_variables(_parse(text))) - set(environment().globals)


def env_refs(text: str) -> set[str]:
    """Environment variables named as `env.NAME` or `env['NAME']` in a template."""
    found = set()
    for node in _parse(text).find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node.node, nodes.Name) and node.node.name == "env":
            if isinstance(node, nodes.Getattr):
                found.add(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                found.add(node.arg.value)
    return found
