"""Writing plans as YAML text that reads back exactly: what `smtprun record` produces.

Strings are written plain only when YAML reads them back unchanged, otherwise double-quoted;
message bodies as literal blocks (`|`) when that reads back the same. Plan strings are Jinja2
templates, so a recorded `{{`, `{%` or `{#` is escaped to stay what it was.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import yaml

from runner.text import UNPRINTABLE
from runner.text import printable as text_printable

__all__ = ["RecordedStep", "literal", "plan_text", "printable"]

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@/+-]*(?<! )", re.ASCII)  # safe unquoted, in flow style too


def printable(text: str) -> str:
    """Text safe for a terminal and a YAML comment: control characters shown as escapes."""
    return text_printable(text, UNPRINTABLE)


@dataclass
class RecordedStep:
    """One step as it will be written: its keys in order, and comments."""

    fields: dict[str, Any]  # in plan order; empty: only the comment is written
    comment: str = ""  # written above the step
    reply: str = ""  # written after `expect:`


def literal(text: str) -> str:
    """Plan strings are Jinja2 templates: a recorded "{{", "{%" or "{#" must stay what it is."""
    return re.sub(r"\{(?=[{%#])", "{{ '{' }}", text)


def _loads(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _float(value: float) -> str:
    """A float as YAML 1.1 (PyYAML) reads it back as that float: it needs a dot in the mantissa and a
    sign in the exponent, so Python's 1e-05 is written 1.0e-05."""
    mantissa, e, exponent = repr(value).partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    if e and exponent[0] not in "+-":
        exponent = "+" + exponent
    return mantissa + e + exponent


def _scalar(value: Any) -> str:
    """A YAML scalar: plain when that reads back the same, else double-quoted (JSON's escapes,
    plus YAML's for the characters YAML may not hold raw)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else _float(value)
    if _PLAIN.fullmatch(value) and _loads(value) == value:
        return value
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
                   for c in json.dumps(value, ensure_ascii=False))


def _body(body: str) -> str:
    """A body as a literal block scalar (`|`) under `  - data:` when it reads back the same."""
    chomp = "+" if body.endswith("\n\n") else "" if body.endswith("\n") else "-"
    indent = "2" if body.lstrip("\n").startswith(" ") else ""  # else YAML takes its spaces for indentation
    lines = body.removesuffix("\n").split("\n")
    block = f"|{indent}{chomp}\n" + "\n".join("      " + line if line else "" for line in lines)
    return block if body.strip() and _loads(f"  - data: {block}\n") == [{"data": body}] else _scalar(body)


def _step_yaml(step: RecordedStep) -> str:
    lines = [f"  # {printable(step.comment)}"] if step.comment else []
    for i, (key, value) in enumerate(step.fields.items()):
        if isinstance(value, dict):
            text = "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in value.items()) + "}"
        else:
            text = _body(value) if key == "data" else _scalar(value)
        tail = f"  # {printable(step.reply)[:72]}" if key == "expect" and step.reply else ""
        lines.append(f"{'  - ' if i == 0 else '    '}{key}: {text}{tail}")
    return "\n".join(lines)


def _secret_var(name: str) -> str:
    """A credential as a variable read from the environment: a run given neither it nor --secret fails
    before it connects on this line, which says what to give (an empty one would be sent as is)."""
    env = f"SMTPRUN_{name.upper()}"
    hint = f"AUTH secret typed while recording: give --secret {name}=... or {env}=..."
    return f'  {name}: "{{{{ env.{env} }}}}"  # {hint}'


def plan_text(steps: list[RecordedStep], where: str, target: dict[str, Any], output: str | None = None,
              name: str | None = None, secrets: list[str] | None = None) -> str:
    """A whole plan: a header saying where it came from, the target, then the steps.

    `secrets` name the credentials that were typed but not written: they become `vars:` read from
    the environment, listed under `secrets:`, to be given with --secret (or that variable) when the
    plan is run; without either, the run stops before sending anything, naming both.
    """
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    run = f"smtprun {printable(output or 'PLAN.yaml')}"
    if secrets:
        run += "".join(f" --secret {n}=..." for n in secrets)
    lines = [f"# Recorded by `smtprun record` from {printable(where)} at {when}.",
             f"# Run it: {run}    (elsewhere: --host H --port P)"]
    if secrets:
        lines.append("# The AUTH credentials typed were not written down: give them (as sent, base64) with --secret,"
                     " or in the environment variables named under vars:.")
    if name:
        lines.append(f"name: {_scalar(name)}")
    lines += ["target:", *(f"  {key}: {_scalar(value)}" for key, value in target.items())]
    if secrets:
        lines += ["vars:", *(_secret_var(n) for n in secrets), f"secrets: [{', '.join(secrets)}]"]
    lines.append("steps:")
    return "\n".join(lines + [_step_yaml(step) for step in steps]) + "\n"
