"""Jinja2 templating of plan strings, in the sandbox: a plan is data and never runs code."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["RenderError", "TemplateSyntaxError", "env_refs", "is_template", "names_used", "render"]

# Values a template may always use besides plan variables and captures.
BUILTIN_NAMES = frozenset({"env", "ehlo"})


class RenderError(Exception):
    """A template failed while rendering: unknown name, forbidden access, bad expression."""


class _Env(Mapping[str, str]):
    """os.environ, read-only, with a clear message for a variable that is not set."""

    def __getitem__(self, key: str) -> str:
        return os.environ[key]

    def __iter__(self) -> Iterator[str]:
        return iter(os.environ)

    def __len__(self) -> int:
        return len(os.environ)


ENVIRON = _Env()


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


@lru_cache(maxsize=1024)
def _compile(text: str) -> Any:
    return environment().from_string(text)


def render(text: str, variables: Mapping[str, Any]) -> str:
    """Render one plan string. Plain strings come back untouched, at no cost."""
    if not is_template(text):
        return text
    try:
        return _compile(text).render(variables)
    except SecurityError as exc:
        raise RenderError(f"template tried a forbidden operation: {exc}") from None
    except UndefinedError as exc:
        raise RenderError(f"template: {exc}") from None
    except TemplateSyntaxError as exc:
        raise RenderError(f"template syntax: {exc.message}") from None
    except Exception as exc:  # a template is user code in a sandbox: any failure is the plan's
        raise RenderError(f"template failed: {type(exc).__name__}: {exc}") from None


@lru_cache(maxsize=256)
def _compile_expression(text: str) -> Any:
    return environment().compile_expression(text)


def evaluate(expression: str, variables: Mapping[str, Any]) -> Any:
    """The value of a Jinja2 expression (a `when:` condition), in the sandbox."""
    try:
        return _compile_expression(expression)(**variables)
    except SecurityError as exc:
        raise RenderError(f"expression tried a forbidden operation: {exc}") from None
    except TemplateSyntaxError as exc:
        raise RenderError(f"expression syntax: {exc.message}") from None
    except Exception as exc:  # user code in a sandbox: any failure is the plan's
        raise RenderError(f"{type(exc).__name__}: {exc}") from None


def names_used(text: str) -> set[str]:
    """Top-level names a template reads. Raises TemplateSyntaxError on bad syntax."""
    ast = environment().parse(text)
    return set(meta.find_undeclared_variables(ast)) - set(environment().globals)


def env_refs(text: str) -> set[str]:
    """Environment variables named as `env.NAME` or `env['NAME']` in a template."""
    ast = environment().parse(text)
    found = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node.node, nodes.Name) and node.node.name == "env":
            if isinstance(node, nodes.Getattr):
                found.add(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                found.add(node.arg.value)
    return found
