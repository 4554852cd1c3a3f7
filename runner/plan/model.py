"""Frozen plan objects, built once from validated data. The interpreter trusts their shape."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import template
from runner.errors import PlanError, Problem
from runner.plan.check import ACTIONS, StepBuilder, parse_size
from runner.plan.load import Loaded

__all__ = ["ACTIONS", "Case", "Plan", "Retry", "Step", "Target", "build_plan", "parse_size", "render_late_vars"]

DEFAULT_TIMEOUT = 30.0
DEFAULT_PORT = 25
IMPLICIT_TLS_PORT = 465  # RFC 8314 §7.3
MAX_MATRIX_CASES = 10_000


@dataclass(frozen=True)
class Target:
    host: str | None
    port: int | str  # a string is a template, e.g. "{{ port }}" from a matrix
    timeout: float = DEFAULT_TIMEOUT
    session_timeout: float | None = None
    tls: str = "none"
    verify: bool = True
    cafile: str | None = None
    server_name: str | None = None
    mx: str | None = None  # a mail domain whose MX hosts are the target (RFC 5321 §5.1)
    all_mx: bool = False
    addresses: str = "first"
    nameservers: tuple[str, ...] = ()
    dns_timeout: float = 5.0
    families: tuple[str, ...] = ("ipv4", "ipv6")

    def __str__(self) -> str:
        if self.mx and not self.host:
            return f"MX {self.mx}:{self.port}"
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
    when: str | None = None
    continue_on_failure: bool = False
    params: dict[str, Any] = field(default_factory=dict)  # an include's `vars:` (win over the plan's)
    defaults: dict[str, Any] = field(default_factory=dict)  # an included file's `vars:` (lose to the plan's)
    file: str | None = None  # the file the step is written in (an included file, or the plan)
    expected_text: str | None = None  # `expect` in words, worked out once

    @property
    def reads_reply(self) -> bool:
        return self.expect is not None or bool(self.capture)


@dataclass(frozen=True)
class Retry:
    times: int
    delay: float = 0.0


@dataclass(frozen=True)
class Case:
    name: str
    line: int
    steps: tuple[Step, ...]
    finally_steps: tuple[Step, ...] = ()
    when: str | None = None
    retry: Retry | None = None
    continue_on_failure: bool = False
    timeout: float | None = None
    vars: dict[str, Any] = field(default_factory=dict)  # this case's matrix values


@dataclass(frozen=True)
class Plan:
    name: str
    file: str
    source: str
    target: Target
    vars: dict[str, Any]
    secrets: tuple[str, ...]
    cases: tuple[Case, ...]
    sequential: bool = False
    late_vars: tuple[str, ...] = ()  # vars whose templates name a matrix value: rendered per case, in this order


def build_plan(loaded: Loaded, overrides: dict[str, str] | None = None) -> Plan:
    """Turn validated data into a Plan, or raise PlanError listing every problem found."""
    data = loaded.data
    problems: list[Problem] = []
    matrix_names = set(data.get("matrix", {})) | {k for c in data.get("cases", []) for k in c.get("matrix", {})}
    variables, late = _resolve_vars(loaded, data.get("vars", {}), overrides or {}, matrix_names, problems)
    for name in data.get("secrets", []):
        if name not in variables:
            problems.append(loaded.problem(f"secret '{name}' is not a variable in vars", ("secrets",)))
    if "cases" in data:
        raw_cases = [(("cases", i), c) for i, c in enumerate(data["cases"])]
    else:
        single = {"name": data.get("name") or Path(loaded.source.name).stem, "steps": data["steps"]}
        if "finally" in data:
            single["finally"] = data["finally"]
        raw_cases = [((), single)]

    scope = {**variables, **{k: "" for k in matrix_names if k not in variables}}
    all_captures = {n for _, c in raw_cases for s in c["steps"] for n in s.get("capture", {})}
    builder = StepBuilder(loaded, scope, problems)
    for key in ("host", "server_name", "cafile", "port", "mx"):
        if isinstance(data.get("target", {}).get(key), str):
            builder.template(data["target"][key], ("target", key), set())

    nameservers = data.get("target", {}).get("nameserver", [])
    for i, text in enumerate([nameservers] if isinstance(nameservers, str) else nameservers):
        from runner.net.dns import parse_nameserver

        try:
            parse_nameserver(text)
        except ValueError as exc:
            where = ("target", "nameserver") if isinstance(nameservers, str) else ("target", "nameserver", i)
            problems.append(loaded.problem(str(exc), where))

    cases: list[Case] = []
    for path, raw in raw_cases:
        line = (loaded.where(path) or (1, 1))[0]
        captured: set[str] = set()
        steps = _numbered(builder.steps(raw["steps"], (*path, "steps"), captured))
        key = "finally" if "finally" in raw else None
        finally_steps = _numbered(builder.steps(raw["finally"], (*path, "finally"), captured), len(steps)) if key \
            else ()
        if "when" in raw:
            builder.expression(raw["when"], (*path, "when"), all_captures)
        retry = Retry(raw["retry"]["times"], raw["retry"].get("delay", 0.0)) if "retry" in raw else None
        combos = _combinations({**data.get("matrix", {}), **raw.get("matrix", {})})
        if len(combos) > MAX_MATRIX_CASES:
            problems.append(loaded.problem(f"matrix makes {len(combos)} cases, over {MAX_MATRIX_CASES}", path))
            continue
        for combo in combos:
            name = raw.get("name", f"case {len(cases) + 1}")
            if combo and template.is_template(name):  # `name: "relay via {{ helo }}"` names itself
                try:
                    name = template.render(name, {**variables, **combo, "env": template.ENVIRON, "ehlo": {}})
                except template.RenderError as exc:
                    problems.append(loaded.problem(f"case name: {exc}", (*path, "name")))
            elif combo:
                name += f" [{', '.join(f'{k}={v}' for k, v in combo.items())}]"
            cases.append(Case(name, line, steps, finally_steps,
                              raw.get("when"), retry, raw.get("continue_on_failure", False), raw.get("timeout"),
                              combo))
    seen: dict[str, int] = {}
    for n, case in enumerate(cases):  # reports and comparisons tell cases apart by name
        if case.name in seen and case.vars:  # a matrix listing a value twice: number the repeats
            k = 2
            while f"{case.name} #{k}" in seen:
                k += 1
            cases[n] = case = dataclasses.replace(case, name=f"{case.name} #{k}")
        elif case.name in seen:
            problems.append(loaded.source.problem(
                f"case name {case.name!r} is used twice (first on line {seen[case.name]})", case.line, 5))
        seen.setdefault(case.name, case.line)
    if problems:
        raise PlanError(problems)
    return Plan(
        name=data.get("name") or Path(loaded.source.name).stem,
        file=loaded.source.name,
        source=loaded.source.text,
        target=_target(data.get("target", {})),
        vars=variables,
        secrets=tuple(data.get("secrets", [])),
        cases=tuple(cases),
        sequential=data.get("sequential", False) or any(c.when for c in cases),
        late_vars=late,
    )


def _resolve_vars(loaded: Loaded, declared: dict[str, Any], overrides: dict[str, str], matrix: set[str],
                  problems: list[Problem]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The plan's variables with their templates rendered once, each after the ones it names.

    `password: "{{ env.SMTP_PASSWORD }}"` takes the environment's value here, so every step, the
    redactor and the reports see the value, not the template. Values from --var are taken as given.
    A template that depends on a matrix value cannot be rendered yet: those come back, in order,
    to be rendered for each case (`render_late_vars`).
    """
    values = {**declared, **overrides}
    pending = {k for k, v in declared.items() if k not in overrides and isinstance(v, str) and template.is_template(v)}
    checker = StepBuilder(loaded, {k: v for k, v in values.items() if k not in pending}, problems)
    for name in sorted(pending):
        checker.variables = set(values) | matrix
        checker.template(values[name], ("vars", name), set())
    if problems:
        return values, ()
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, via: tuple[str, ...]) -> None:
        if name in order or name not in pending:
            return
        if name in visiting:
            problems.append(loaded.problem(f"variables refer to each other in a loop: {' -> '.join((*via, name))}",
                                           ("vars", name)))
            return
        visiting.add(name)
        for used in sorted(template.names_used(values[name]) & pending):
            visit(used, (*via, name))
        visiting.discard(name)
        order.append(name)

    for name in sorted(pending):
        visit(name, ())
    late: list[str] = []
    for name in order:
        if template.names_used(values[name]) & (matrix | set(late)):
            late.append(name)
            continue
        try:
            values[name] = template.render(values[name], {**values, "env": template.ENVIRON, "ehlo": {}})
        except template.RenderError as exc:
            problems.append(loaded.problem(f"vars.{name}: {exc}", ("vars", name)))
    return values, tuple(late)


def render_late_vars(plan: Plan, variables: dict[str, Any]) -> dict[str, Any]:
    """A case's variables with the plan's matrix-dependent templates rendered (RenderError passes up)."""
    values = dict(variables)
    for name in plan.late_vars:
        values[name] = template.render(str(plan.vars[name]), {**values, "env": template.ENVIRON, "ehlo": {}})
    return values


def _numbered(steps: list[Step], start: int = 0) -> tuple[Step, ...]:
    from dataclasses import replace

    return tuple(replace(s, index=start + i + 1) for i, s in enumerate(steps))


def _combinations(matrix: dict[str, list[Any]]) -> list[dict[str, Any]]:
    if not matrix:
        return [{}]
    names = list(matrix)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(matrix[n] for n in names))]


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
        mx=raw.get("mx"),
        all_mx=raw.get("all", False),
        addresses=raw.get("addresses", "first"),
        nameservers=tuple([raw["nameserver"]] if isinstance(raw.get("nameserver"), str) else raw.get("nameserver", [])),
        dns_timeout=float(raw.get("dns_timeout", 5.0)),
    )
