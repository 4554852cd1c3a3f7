"""Frozen plan objects, built once from validated data. The interpreter trusts their shape.

Building also checks what a JSON Schema cannot: regexes compile, templates parse, every
variable a template reads is defined by then (plan vars, --var, captures of earlier steps), every
`env.NAME` is set, and no template reaches for what the sandbox forbids.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import template
from runner.errors import PlanError, Problem
from runner.plan.load import Loaded

__all__ = ["ACTIONS", "Case", "Plan", "Step", "Target", "build_plan"]

ACTIONS = ("send", "raw", "data", "data_file", "data_size", "sleep", "close", "starttls", "auth", "pipeline", "bdat",
           "expect_tls")
# RFC 2920 §3.1: these may only end a pipelined group; STARTTLS (RFC 3207 §4.1) and AUTH likewise.
LAST_IN_GROUP = frozenset({"EHLO", "HELO", "DATA", "VRFY", "EXPN", "TURN", "QUIT", "NOOP", "STARTTLS", "AUTH"})
MAX_GENERATED_BODY = 16 * 1024**3
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([kKmMgG]i?)?[bB]?$")
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


def parse_size(text: str) -> int:
    """"50MB" -> 50_000_000, "64KiB" -> 65_536, "1000" -> 1000 (the schema has checked the form)."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return int(float(m[1]) * _UNITS[(m[2] or "").lower()])
DEFAULT_TIMEOUT = 30.0
DEFAULT_PORT = 25
IMPLICIT_TLS_PORT = 465  # RFC 8314 §7.3


@dataclass(frozen=True)
class Target:
    host: str | None
    port: int
    timeout: float = DEFAULT_TIMEOUT
    session_timeout: float | None = None
    tls: str = "none"
    verify: bool = True
    cafile: str | None = None
    server_name: str | None = None

    def __str__(self) -> str:
        host = self.host or "?"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


@dataclass(frozen=True)
class Step:
    index: int  # 1-based within its case
    line: int
    action: str  # one of ACTIONS, or "expect" for a step that only reads a reply
    value: Any  # the action's argument as written (templates unrendered)
    expect: Any = None  # the expectation as written; None: read no reply
    capture: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    name: str | None = None

    @property
    def reads_reply(self) -> bool:
        return self.expect is not None or bool(self.capture)


@dataclass(frozen=True)
class Case:
    name: str
    line: int
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Plan:
    name: str
    file: str
    source: str
    target: Target
    vars: dict[str, Any]
    secrets: tuple[str, ...]
    cases: tuple[Case, ...]


def build_plan(loaded: Loaded, overrides: dict[str, str] | None = None) -> Plan:
    """Turn validated data into a Plan, or raise PlanError listing every problem found."""
    data = loaded.data
    problems: list[Problem] = []
    variables: dict[str, Any] = {**data.get("vars", {}), **(overrides or {})}
    for name in data.get("secrets", []):
        if name not in variables:
            problems.append(loaded.problem(f"secret '{name}' is not a variable in vars", ("secrets",)))

    target = _target(data.get("target", {}))
    if "cases" in data:
        raw_cases = [(("cases", i), c.get("name") or f"case {i + 1}", c["steps"]) for i, c in enumerate(data["cases"])]
    else:
        raw_cases = [((), data.get("name") or Path(loaded.source.name).stem, data["steps"])]

    checker = _Checker(loaded, variables, problems)
    for key in ("host", "server_name", "cafile"):
        if isinstance(data.get("target", {}).get(key), str):
            checker.template(data["target"][key], ("target", key), set())

    cases = []
    for path, name, raw_steps in raw_cases:
        line = (loaded.where(path) or (1, 1))[0]
        cases.append(Case(name, line, tuple(checker.steps(raw_steps, (*path, "steps")))))
    if problems:
        raise PlanError(problems)
    return Plan(
        name=data.get("name") or Path(loaded.source.name).stem,
        file=loaded.source.name,
        source=loaded.source.text,
        target=target,
        vars=variables,
        secrets=tuple(data.get("secrets", [])),
        cases=tuple(cases),
    )


def _target(raw: dict[str, Any]) -> Target:
    tls = raw.get("tls", "none")
    return Target(
        host=raw.get("host"),
        port=raw.get("port", IMPLICIT_TLS_PORT if tls == "implicit" else DEFAULT_PORT),
        timeout=float(raw.get("timeout", DEFAULT_TIMEOUT)),
        session_timeout=raw.get("session_timeout"),
        tls=tls,
        verify=raw.get("verify", True),
        cafile=raw.get("cafile"),
        server_name=raw.get("server_name"),
    )


class _Checker:
    """Checks the templates and regexes of steps, tracking which names are defined where."""

    def __init__(self, loaded: Loaded, values: dict[str, Any], problems: list[Problem]) -> None:
        self.loaded = loaded
        self.values = values
        self.variables = set(values)
        self.problems = problems

    def steps(self, raw_steps: list[dict[str, Any]], path: tuple[Any, ...]) -> list[Step]:
        captured: set[str] = set()
        out = []
        for i, raw in enumerate(raw_steps):
            spath = (*path, i)
            action = next((a for a in ACTIONS if a in raw), "expect")
            self._strings(raw, spath, captured)
            for name, rx in raw.get("capture", {}).items():
                self.regex(rx, (*spath, "capture", name))
            expect = raw.get("expect")
            if isinstance(expect, dict) and "text" in expect:
                self.regex(expect["text"], (*spath, "expect", "text"))
            line = (self.loaded.where(spath) or (1, 1))[0]
            value = self._value(action, raw.get(action), (*spath, action))
            out.append(Step(index=i + 1, line=line, action=action, value=value, expect=expect,
                            capture=dict(raw.get("capture", {})), timeout=raw.get("timeout"), name=raw.get("name")))
            captured |= set(raw.get("capture", {}))
        return out

    def _value(self, action: str, value: Any, path: tuple[Any, ...]) -> Any:
        """Action arguments that can be settled now: file paths, sizes, pipelining order."""
        if action == "data_file" and not template.is_template(value):
            resolved = Path(self.loaded.source.name).parent / value
            if not resolved.is_file():
                self.problems.append(self.loaded.problem(f"data_file not found: {resolved}", path))
            return str(resolved)
        if action == "data_size":
            size = parse_size(value)
            if size > MAX_GENERATED_BODY:
                self.problems.append(self.loaded.problem(f"data_size is over {MAX_GENERATED_BODY} bytes", path))
            return size
        if action == "pipeline":
            for i, item in enumerate(value[:-1]):
                verb = item["send"].split(" ", 1)[0].upper()
                if verb in LAST_IN_GROUP:
                    self.problems.append(self.loaded.problem(
                        f"{verb} may only be the last command of a pipelined group (RFC 2920 §3.1)", (*path, i)))
            for i, item in enumerate(value):
                if isinstance(item.get("expect"), dict) and "text" in item["expect"]:
                    self.regex(item["expect"]["text"], (*path, i, "expect", "text"))
        return value

    def _strings(self, value: Any, path: tuple[Any, ...], captured: set[str]) -> None:
        if isinstance(value, str):
            self.template(value, path, captured)
        elif isinstance(value, dict):
            for k, v in value.items():
                if k != "capture":  # capture regexes are checked as regexes
                    self._strings(v, (*path, k), captured)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self._strings(v, (*path, i), captured)

    def template(self, text: str, path: tuple[Any, ...], captured: set[str]) -> None:
        if not template.is_template(text):
            return
        try:
            used = template.names_used(text)
            env_names = template.env_refs(text)
        except template.TemplateSyntaxError as exc:
            self.problems.append(self.loaded.problem(f"template syntax: {exc.message}", path))
            return
        known = self.variables | captured | template.BUILTIN_NAMES
        for name in sorted(used - known):
            hint = "define it under vars:, pass --var " + f"{name}=..., or capture it in an earlier step"
            self.problems.append(self.loaded.problem(f"undefined variable '{name}'", path, hint=hint))
        for name in sorted(env_names):
            if name not in os.environ:
                self.problems.append(self.loaded.problem(f"environment variable {name} is not set", path))
        if used <= self.variables | template.BUILTIN_NAMES:
            self._dry_render(text, path)

    def _dry_render(self, text: str, path: tuple[Any, ...]) -> None:
        """Render a template that needs nothing from the server, to refuse sandbox escapes up front."""
        from runner.template import ENVIRON, RenderError, render

        values = {**self.values, "env": ENVIRON, "ehlo": {}}
        try:
            render(text, values)
        except RenderError as exc:
            if "forbidden" in str(exc) or "unsafe" in str(exc):
                self.problems.append(self.loaded.problem(str(exc), path))

    def regex(self, pattern: str, path: tuple[Any, ...]) -> None:
        if template.is_template(pattern):
            return
        try:
            re.compile(pattern)
        except re.error as exc:
            self.problems.append(self.loaded.problem(f"bad regex {pattern!r}: {exc}", path))
