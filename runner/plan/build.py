"""Building a Plan from validated data: variables rendered in order, steps checked, matrix cases named.

Every problem found is collected, so one PlanError lists them all; the interpreter then trusts
the shape of what comes out.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

from runner import template
from runner.errors import Location, PlanError, Problem
from runner.net.address import check_host, parse_source
from runner.plan.load import Loaded
from runner.plan.replies import unread_replies
from runner.plan.scope import render_early
from runner.plan.stepbuilder import StepBuilder
from runner.plan.types import Case, Plan, Retry, Step, Target

__all__ = ["MAX_MATRIX_CASES", "build_plan"]

DEFAULT_PORT = 25
IMPLICIT_TLS_PORT = 465  # RFC 8314 §7.3
MAX_MATRIX_CASES = 10_000


def build_plan(loaded: Loaded, overrides: dict[str, str] | None = None) -> Plan:
    """Turn validated data into a Plan, or raise PlanError listing every problem found."""
    return _PlanBuilder(loaded, overrides or {}).plan()


class _PlanBuilder:
    """One plan file's data on its way to a Plan, and the problems found on the way."""

    def __init__(self, loaded: Loaded, overrides: dict[str, str]) -> None:
        self.loaded, self.data, self.overrides = loaded, loaded.data, overrides
        self.problems: list[Problem] = []
        self.read: set[str] = set()  # the names the plan's templates read (StepBuilder.read)
        self.warnings: list[Problem] = []  # StepBuilder.warnings
        self.matrix_names = set(self.data.get("matrix", {})) | {
            k for c in self.data.get("cases", []) for k in c.get("matrix", {})}

    def plan(self) -> Plan:
        data = self.data
        variables, late = self.variables()
        self.check_secrets(variables)
        raw_cases = self.raw_cases()
        self.check_lmtp(raw_cases)
        names = {**variables, **{k: "" for k in self.matrix_names if k not in variables}}
        steps = StepBuilder(self.loaded, names, self.problems, read=self.read, warnings=self.warnings)
        steps.unsettled |= self.matrix_names | set(late)
        self.check_target(steps)
        captures = {n for _, c in raw_cases for s in c["steps"] for n in s.get("capture", {})}
        cases: list[Case] = []
        for path, raw in raw_cases:
            cases += self.cases(path, raw, steps, variables, captures, len(cases))
        cases = self.unique_names(cases)
        if self.problems:
            raise PlanError(self.problems)
        return Plan(
            name=data.get("name") or Path(self.loaded.source.name).stem,
            file=self.loaded.source.name,
            source=self.loaded.source.text,
            target=_target(data.get("target", {})),
            vars=variables,
            secrets=tuple(data.get("secrets", [])),
            cases=tuple(cases),
            sequential=data.get("sequential", False) or any(c.when for c in cases),
            late_vars=late,
            warnings=tuple(self.warnings),
            names=(frozenset(data.get("vars", {})) | self.matrix_names | self.read) - {"env"},  # env: never a --var
        )

    # -- variables --------------------------------------------------------------------------
    def variables(self) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The plan's variables with their templates rendered once, each after the ones it names.

        `password: "{{ env.SMTP_PASSWORD }}"` takes the environment's value here, so every step, the
        redactor and the reports see the value, not the template. Values from --var are taken as given.
        A template that depends on a matrix value cannot be rendered yet: those come back, in order,
        to be rendered for each case (`Scope.for_case`).
        """
        declared = self.data.get("vars", {})
        values = {**declared, **self.overrides}
        pending = {k for k, v in declared.items()
                   if k not in self.overrides and isinstance(v, str) and template.is_template(v)}
        checker = StepBuilder(self.loaded, {k: v for k, v in values.items() if k not in pending}, self.problems,
                              read=self.read)
        checker.variables = set(values) | self.matrix_names
        for name in sorted(pending):
            checker.template(values[name], ("vars", name), set())
        if self.problems:
            return values, ()
        late: list[str] = []
        room = template.MAX_VALUES  # every variable may be large, not all of them together
        for name in self.var_order(values, pending):
            if template.names_used(values[name]) & (self.matrix_names | set(late)):
                late.append(name)
                continue
            try:
                values[name] = render_early(values[name], values, min(room, template.MAX_VALUE))
                room -= len(values[name])
            except template.OutputTooLarge as exc:
                what = "template" if exc.limit == template.MAX_VALUE else "with the variables before it, it"
                self.problems.append(self.loaded.problem(
                    f"vars.{name}: {what} renders to more than {exc.limit} characters", ("vars", name)))
            except template.RenderError as exc:
                self.problems.append(self.loaded.problem(f"vars.{name}: {exc}", ("vars", name)))
        return values, tuple(late)

    def var_order(self, values: dict[str, Any], pending: set[str]) -> list[str]:
        """The templated variables, each after those it names; a loop among them is a problem."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str, via: tuple[str, ...]) -> None:
            if name in order or name not in pending:
                return
            if name in visiting:
                self.problems.append(self.loaded.problem(
                    f"variables refer to each other in a loop: {' -> '.join((*via, name))}", ("vars", name)))
                return
            visiting.add(name)
            for used in sorted(template.names_used(values[name]) & pending):
                visit(used, (*via, name))
            visiting.discard(name)
            order.append(name)

        for name in sorted(pending):
            visit(name, ())
        return order

    def check_secrets(self, variables: dict[str, Any]) -> None:
        for name in self.data.get("secrets", []):
            if name not in variables:
                self.problems.append(self.loaded.problem(f"secret '{name}' is not a variable in vars", ("secrets",)))

    # -- target -----------------------------------------------------------------------------
    def check_target(self, steps: StepBuilder) -> None:
        target = self.data.get("target", {})
        for key in ("host", "server_name", "cafile", "port", "mx", "source", "unix"):
            if isinstance(target.get(key), str):
                steps.template(target[key], ("target", key), set())
        if isinstance(target.get("source"), str) and not template.is_template(target["source"]):
            try:
                parse_source(target["source"])
            except ValueError as exc:
                self.problems.append(self.loaded.problem(f"target.source: {exc}", ("target", "source")))
        for key in ("host", "mx"):  # a templated one is checked once rendered, as the case connects
            if isinstance(target.get(key), str) and not template.is_template(target[key]):
                try:
                    check_host(target[key])
                except ValueError as exc:
                    self.problems.append(self.loaded.problem(str(exc), ("target", key)))
        self.check_proxy(target)
        self.check_unix(target)
        self.check_tls_client(target)
        nameservers = target.get("nameserver", [])
        for i, text in enumerate([nameservers] if isinstance(nameservers, str) else nameservers):
            from runner.net.dns import parse_nameserver  # only a plan that names its name servers

            try:
                parse_nameserver(text)
            except ValueError as exc:
                where = ("target", "nameserver") if isinstance(nameservers, str) else ("target", "nameserver", i)
                self.problems.append(self.loaded.problem(str(exc), where))

    def check_proxy(self, target: dict[str, Any]) -> None:
        """A PROXY header that can be sent: known version, addresses of one family."""
        if not isinstance(target.get("proxy"), dict):
            return
        from runner.smtp.proxy import ProxyHeader

        try:
            ProxyHeader.from_plan(target["proxy"])
        except ValueError as exc:
            self.problems.append(self.loaded.problem(f"target.proxy: {exc}", ("target", "proxy")))

    def check_tls_client(self, target: dict[str, Any]) -> None:
        """The client side of implicit TLS (runner.plan.tlscheck): only with tls: implicit, where it is used."""
        given = [key for key in ("cert", "key", "sni", "min_version", "max_version", "ciphers") if key in target]
        if given and target.get("tls") != "implicit":
            self.problems.append(self.loaded.problem(
                f"target.{given[0]} is for tls: implicit, and this target has none: for STARTTLS give it in the "
                "starttls: step", ("target", given[0]), hint="add tls: implicit, or move it into starttls:"))
        if not given:  # nothing to check: spares a plain target the import of the TLS client's checks
            return
        from runner.plan.tlscheck import report_client_tls

        report_client_tls(self.loaded, target, ("target",), "target", (self.problems, self.warnings))

    def check_lmtp(self, raw_cases: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> None:
        """Postfix's XCLIENT and XFORWARD are SMTP server extensions: an LMTP server has neither."""
        if self.data.get("target", {}).get("protocol") != "lmtp":
            return
        for path, raw in raw_cases:
            for i, step in enumerate(raw.get("steps", [])):
                for key in ("xclient", "xforward") if isinstance(step, dict) else ():
                    if key in step:
                        self.problems.append(self.loaded.problem(
                            f"{key}: is a Postfix SMTP extension, and target.protocol is lmtp: no LMTP server "
                            "takes it", (*path, "steps", i, key)))

    def check_unix(self, target: dict[str, Any]) -> None:
        """A UNIX-domain socket is the whole address: no host, MX domain or source address beside it."""
        if "unix" not in target:
            return
        for key in ("host", "port", "mx", "source"):
            if key in target:
                self.problems.append(self.loaded.problem(
                    f"target.unix and target.{key}: a UNIX-domain socket is the whole address (no host, port, "
                    "MX domain or source address); give one of them", ("target", key)))
        if target.get("tls") == "implicit":
            self.problems.append(self.loaded.problem(
                "target.unix with tls: implicit is not supported yet: use a starttls: step", ("target", "tls")))

    # -- cases ------------------------------------------------------------------------------
    def raw_cases(self) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        """Each case as written, with its path in the file; a plan of bare `steps:` is one case."""
        data = self.data
        if "cases" in data:
            return [(("cases", i), c) for i, c in enumerate(data["cases"])]
        single = {"name": data.get("name") or Path(self.loaded.source.name).stem, "steps": data["steps"]}
        if "finally" in data:
            single["finally"] = data["finally"]
        return [((), single)]

    def cases(self, path: tuple[Any, ...], raw: dict[str, Any], builder: StepBuilder, variables: dict[str, Any],
              all_captures: set[str], numbered: int) -> list[Case]:
        """One case as written: one Case, or one per matrix combination. `numbered`: cases before it."""
        line = (self.loaded.where(path) or (1, 1))[0]
        captured: set[str] = set()
        steps = _numbered(builder.steps(raw["steps"], (*path, "steps"), captured))
        finally_steps = _numbered(builder.steps(raw["finally"], (*path, "finally"), captured), len(steps)) \
            if "finally" in raw else ()
        self.warn_unread((*steps, *finally_steps))
        if "when" in raw:
            builder.expression(raw["when"], (*path, "when"), all_captures)
        retry = Retry(raw["retry"]["times"], raw["retry"].get("delay", 0.0)) if "retry" in raw else None
        combos = _combinations({**self.data.get("matrix", {}), **raw.get("matrix", {})})
        if len(combos) > MAX_MATRIX_CASES:
            self.problems.append(self.loaded.problem(f"matrix makes {len(combos)} cases, over {MAX_MATRIX_CASES}",
                                                     path))
            return []
        return [Case(self.case_name(raw, path, combo, variables, numbered + n), line, steps, finally_steps,
                     raw.get("when"), retry, raw.get("continue_on_failure", False), raw.get("timeout"), combo,
                     quit_on_failure=raw.get("quit_on_failure"))
                for n, combo in enumerate(combos)]

    def warn_unread(self, steps: tuple[Step, ...]) -> None:
        """Warnings for replies the steps leave unread (runner.plan.replies), at the step that leaves one."""
        source = self.loaded.source
        for found in unread_replies(steps):
            step = found.step
            if step.file == source.name and 0 < step.line <= len(source.lines):
                text = source.lines[step.line - 1]
                col = len(text) - len(text.lstrip(" -")) + 1  # the step's first key, after "- "
                warning = source.problem(found.message, step.line, col, hint=found.hint)
            else:  # a step from an included file
                warning = Problem(found.message, Location(step.file or source.name, step.line, 1), hint=found.hint)
            warning.severity = "warning"
            self.warnings.append(warning)

    def case_name(self, raw: dict[str, Any], path: tuple[Any, ...], combo: dict[str, Any],
                  variables: dict[str, Any], numbered: int) -> str:
        name = raw.get("name", f"case {numbered + 1}")
        if combo and template.is_template(name):  # `name: "relay via {{ helo }}"` names itself
            try:
                return render_early(name, {**variables, **combo})
            except template.RenderError as exc:
                self.problems.append(self.loaded.problem(f"case name: {exc}", (*path, "name")))
        elif combo:
            name += f" [{', '.join(f'{k}={v}' for k, v in combo.items())}]"
        return name

    def unique_names(self, cases: list[Case]) -> list[Case]:
        """Reports and comparisons tell cases apart by name: a matrix listing a value twice numbers
        the repeats; two cases written with one name are a problem."""
        seen: dict[str, int] = {}
        out = []
        for case in cases:
            if case.name in seen and case.vars:
                k = 2
                while f"{case.name} #{k}" in seen:
                    k += 1
                case = dataclasses.replace(case, name=f"{case.name} #{k}")
            elif case.name in seen:
                self.problems.append(self.loaded.source.problem(
                    f"case name {case.name!r} is used twice (first on line {seen[case.name]})", case.line, 5))
            seen.setdefault(case.name, case.line)
            out.append(case)
        return out


def _numbered(steps: list[Step], start: int = 0) -> tuple[Step, ...]:
    return tuple(dataclasses.replace(s, index=start + i + 1) for i, s in enumerate(steps))


def _combinations(matrix: dict[str, list[Any]]) -> list[dict[str, Any]]:
    if not matrix:
        return [{}]
    names = list(matrix)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(matrix[n] for n in names))]


_TARGET_FIELDS = {f.name for f in dataclasses.fields(Target)}
_TARGET_NAMES = {"all": "all_mx", "nameserver": "nameservers"}  # the plan's key -> Target's field


def _target(raw: dict[str, Any]) -> Target:
    """The plan's `target:` as a Target: what the plan gives; every default is Target's own (runner.plan.types),
    but the port's, which follows `tls:` (RFC 8314 §7.3)."""
    given = {_TARGET_NAMES.get(key, key): value for key, value in raw.items()}
    given = {key: value for key, value in given.items() if key in _TARGET_FIELDS}
    if isinstance(given.get("nameservers"), str):
        given["nameservers"] = (given["nameservers"],)
    given["nameservers"] = tuple(given.get("nameservers", ()))
    for key in ("timeout", "dns_timeout"):
        if key in given:
            given[key] = float(given[key])
    if isinstance(given.get("proxy"), dict):
        from runner.smtp.proxy import ProxyHeader

        given["proxy"] = ProxyHeader.from_plan(given["proxy"])
    given.setdefault("host", None)
    given.setdefault("port", IMPLICIT_TLS_PORT if given.get("tls") == "implicit" else DEFAULT_PORT)
    return Target(**given)
