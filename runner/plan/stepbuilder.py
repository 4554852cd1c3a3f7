"""Turning validated step lists into Step objects: includes, templates, regexes, names in scope.

A JSON Schema checks shapes; this checks meaning, still before anything is sent: an include
resolves (without cycles), every regex compiles, every template parses and names only what will
exist when it runs, every `env.NAME` is set, and no template reaches past the sandbox.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import template
from runner.errors import PlanError, Problem
from runner.files import inside
from runner.plan.actions import ACTIONS, KINDS, PIPELINE_LINE, named
from runner.plan.envelope import envelope_warning
from runner.plan.labels import shown, wire_template
from runner.plan.load import Loaded, Unreadable, load_file
from runner.plan.schema import did_you_mean
from runner.plan.scope import render_early
from runner.plan.signcheck import step_dkim
from runner.plan.types import Include, Step
from runner.smtp.expect import describe

__all__ = ["ACTIONS", "LAST_IN_GROUP", "StepBuilder", "parse_size"]

# RFC 2920 §3.1: these may only end a pipelined group; STARTTLS (RFC 3207 §4.1) and AUTH likewise.
LAST_IN_GROUP = frozenset({"EHLO", "HELO", "DATA", "VRFY", "EXPN", "TURN", "QUIT", "NOOP", "STARTTLS", "AUTH"})
SMUGGLE_PAUSE = 0.5  # seconds between the pieces of a smuggle: step, unless it says
MAX_GENERATED_BODY = 16 * 1024**3
MAX_INCLUDE_DEPTH = 16
_MAILBOX = named("mailbox")
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([kKmMgG]i?)?[bB]?$")
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


def parse_size(text: str) -> int:
    """"50MB" -> 50_000_000, "64KiB" -> 65_536, "1000" -> 1000 (the schema has checked the form)."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return int(float(m[1]) * _UNITS[(m[2] or "").lower()])


def _described(expect: Any) -> str | None:
    """An expectation in words, when no part of it is a template (a templated `text:` is described as each case
    renders it, runner.run.case)."""
    if expect is None or (isinstance(expect, dict) and template.is_template(str(expect.get("text", "")))):
        return None
    return describe(expect)


def _is_body(path: tuple[Any, ...]) -> bool:
    """Whether path names a step's text that goes on the wire (`send:`, `raw:`, `data:`, `bdat:`'s `data:`:
    ActionKind.large), not a pipeline's line."""
    def step(at: int) -> bool:  # path[at] is the index of a step in a list of steps
        return len(path) >= -at + 1 and path[at - 1] in ("steps", "finally") and isinstance(path[at], int)

    if step(-2) and path[-1] in KINDS:
        return "" in KINDS[path[-1]].large
    return step(-3) and path[-2] in KINDS and path[-1] in KINDS[path[-2]].large


@dataclass(frozen=True)
class Within:
    """Where an included file's steps are built: the include's `vars:` (they win over the plan's variables),
    the included file's own `vars:` (used where the plan has none), and the chain of files that led there."""

    params: dict[str, Any]
    chain: tuple[str, ...]
    defaults: dict[str, Any]


class StepBuilder:
    """Builds the steps of one file, tracking which names are defined where."""

    def __init__(self, loaded: Loaded, values: dict[str, Any], problems: list[Problem], within: Within | None = None,
                 read: set[str] | None = None, warnings: list[Problem] | None = None) -> None:
        self.loaded = loaded
        self.values = values
        params, chain, defaults = (within.params, within.chain, within.defaults) if within else ({}, (), {})
        self.params = params  # an include's `vars:`: they win over the plan's variables
        self.defaults = defaults  # an included file's own `vars:`: used where the plan has none
        self.variables = set(values) | set(self.params) | set(self.defaults)
        self.problems = problems
        self.read = set() if read is None else read  # every name a template of the plan reads, shared by includes
        self.warnings = [] if warnings is None else warnings  # what runs as written, but a strict server refuses
        self.unsettled: set[str] = set(self.params)  # names whose values are known only per case (matrix, include)
        self.chain = chain or (str(Path(loaded.source.name).resolve()),)
        self.include_site = Include(self.params, self.defaults) if self.params or self.defaults else None

    def problem(self, message: str, path: tuple[Any, ...], key: bool = False, hint: str | None = None) -> None:
        self.problems.append(self.loaded.problem(message, path, key=key, hint=hint))

    def steps(self, raw_steps: list[dict[str, Any]], path: tuple[Any, ...], captured: set[str]) -> list[Step]:
        """Step objects for `raw_steps`; includes are expanded in place. `captured` grows as names are captured."""
        out: list[Step] = []
        for i, raw in enumerate(raw_steps):
            spath = (*path, i)
            if "include" in raw:
                out.extend(self.include(raw, spath, captured))
                continue
            action = next((a for a in ACTIONS if a in raw), "expect")
            self._strings(raw, spath, captured)
            if "when" in raw:
                self.expression(raw["when"], (*spath, "when"), captured)
            for name, rx in raw.get("capture", {}).items():
                self.regex(rx, (*spath, "capture", name))
            expect = raw.get("expect")
            if isinstance(expect, dict) and "text" in expect:
                self.regex(expect["text"], (*spath, "expect", "text"))
            line = (self.loaded.where(spath) or (1, 1))[0]
            value = self._value(action, raw.get(action), (*spath, action), captured)
            out.append(Step(index=0, line=line, action=action, value=value, expect=expect,
                            capture=dict(raw.get("capture", {})), timeout=raw.get("timeout"), name=raw.get("name"),
                            when=raw.get("when"), continue_on_failure=raw.get("continue_on_failure", False),
                            include=self.include_site, file=self.loaded.source.name, expected=_described(expect),
                            dkim=step_dkim(raw, action, value, spath, self._plan_file, self.problem),
                            shown=shown(action, value, raw.get("name")), wire_template=wire_template(action, value)))
            captured |= set(raw.get("capture", {}))
        return out

    def include(self, raw: dict[str, Any], path: tuple[Any, ...], captured: set[str]) -> list[Step]:
        """`include: other.yaml`: that file's steps. The include's `vars` win over the plan's variables;
        the included file's own `vars` are defaults, used only for names the plan does not define."""
        from runner.plan.schema import validate_fragment

        target = Path(self.loaded.source.name).parent / raw["include"]
        here = f"{self.loaded.source.name}:{(self.loaded.where(path) or (1, 1))[0]}"
        resolved = self._include_target(raw["include"], target, (*path, "include"))
        if resolved is None:
            return []
        found: list[Problem] = []
        try:
            loaded = load_file(target, kind="included file", hide=self.loaded.source.hide)  # secrets stay hidden
            if isinstance(loaded.data, list):  # a bare list of steps, as an Ansible task file is
                loaded = loaded.under("steps")
            found = validate_fragment(loaded)
        except Unreadable as exc:  # said where the include is: the file itself has no lines to point at
            self.problem(f"cannot read included file {raw['include']}: {exc.reason}", (*path, "include"))
            return []
        except PlanError as exc:
            found = exc.problems
        if not found:
            for name in raw.get("vars", {}):
                self._strings(raw["vars"][name], (*path, "vars", name), captured)
            params = {**self.params, **raw.get("vars", {})}
            defaults = {**self.defaults, **loaded.data.get("vars", {})}
            sub = StepBuilder(loaded, self.values, found, Within(params, (*self.chain, resolved), defaults), self.read)
            sub.unsettled |= self.unsettled
            steps = sub.steps(loaded.data["steps"], ("steps",), captured)
            for warning in sub.warnings:
                warning.notes.append(f"included from {here}")
            self.warnings.extend(sub.warnings)
        for problem in found:
            problem.notes.append(f"included from {here}")
        self.problems.extend(found)
        return [] if found else steps

    def _value(self, action: str, value: Any, path: tuple[Any, ...], captured: set[str]) -> Any:
        """Action arguments that can be settled now (file paths, sizes, pipelining order, defaults): each step
        type's own `_settle_<type>` method, where it has one; then its typed options (runner.plan.options)."""
        if action in _MAILBOX:
            self._mailbox(value, path, captured)
        settle = getattr(self, f"_settle_{action}", None)
        settled = value if settle is None else settle(value, path, captured)
        typed = None if action not in KINDS else KINDS[action].options_class()
        return settled if typed is None else typed.read(settled)

    def _settle_send(self, value: Any, path: tuple[Any, ...], captured: set[str]) -> Any:
        self.envelope(value, path)
        return value

    def _settle_smuggle(self, value: Any, path: tuple[Any, ...], captured: set[str]) -> Any:
        return self._smuggle(value, path, captured)

    def _settle_raw(self, value: Any, path: tuple[Any, ...], captured: set[str]) -> Any:
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            self.problem("raw: the list has only pauses, nothing to send", path,
                         hint='give the bytes as strings between the pauses: ["...", {pause: 0.5}, "..."]')
        return value

    def _settle_data_size(self, value: Any, path: tuple[Any, ...], captured: set[str]) -> int:
        size = parse_size(value)
        if size > MAX_GENERATED_BODY:
            self.problem(f"data_size is over {MAX_GENERATED_BODY} bytes", path)
        return size

    def _settle_pipeline(self, value: Any, path: tuple[Any, ...], captured: set[str]) -> Any:
        for i, item in enumerate(value[:-1]):
            verb = item[PIPELINE_LINE].split(" ", 1)[0].upper()
            if verb in LAST_IN_GROUP:
                self.problem(f"{verb} may only be the last command of a pipelined group (RFC 2920 §3.1)",
                             (*path, i))
        for i, item in enumerate(value):
            self.envelope(item[PIPELINE_LINE], (*path, i, PIPELINE_LINE))
            if isinstance(item.get("expect"), dict) and "text" in item["expect"]:
                self.regex(item["expect"]["text"], (*path, i, "expect", "text"))
        return value

    def _settle_starttls(self, value: Any, path: tuple[Any, ...], captured: set[str]) -> Any:
        from runner.plan.tlscheck import report_client_tls

        report_client_tls(self.loaded, value or {}, path, "starttls", (self.problems, self.warnings))
        return value

    def _settle_data_file(self, value: str, path: tuple[Any, ...], captured: set[str]) -> str:
        return self._plan_file("data_file", value, path)[0]

    def _settle_message(self, value: dict[str, Any], path: tuple[Any, ...], captured: set[str]) -> dict[str, Any]:
        """A message's literal file paths resolved and checked: its attachments as data_file's, and at most
        MAX_ATTACHMENT_BYTES together; its DKIM key (read, never sent: it may lie anywhere)."""
        from runner.mail.compose import MAX_ATTACHMENT_BYTES

        out, total = {**value, "attachments": []}, 0
        for i, item in enumerate(value.get("attachments") or ()):
            resolved, size = self._plan_file("attachment", item["path"], where := (*path, "attachments", i, "path"))
            total += size
            if size and total > MAX_ATTACHMENT_BYTES:
                self.problem(f"attachment {item['path']} ({size} bytes) takes the message's attachments past "
                             f"{MAX_ATTACHMENT_BYTES} bytes, the most smtprun builds a message with", where)
            out["attachments"].append({**item, "path": resolved})
        if "dkim" in value:
            key = self._plan_file("dkim key", value["dkim"]["key"], (*path, "dkim", "key"), confined=False)[0]
            out["dkim"] = {**value["dkim"], "key": key}
        return out

    def _plan_file(self, what: str, value: str, path: tuple[Any, ...], confined: bool = True) -> tuple[str, int]:
        """A literal file path, resolved against the file that names it, and its size: a regular file, inside
        the plan's folder (even from an include) when it is `confined` (sent to the server). A template is
        checked as it is rendered, and returned as written."""
        if template.is_template(value):
            return value, 0
        resolved = Path(self.loaded.source.name).parent / value
        try:
            if confined and not inside(resolved, Path(self.chain[0]).parent):
                self.problem(f"{what} {value} is outside the plan's folder: a plan may only send files "
                             "that sit beside it or below it", path, hint="move the file next to the plan")
            elif not stat.S_ISREG((found := os.stat(resolved)).st_mode):
                self.problem(f"{what} is not a regular file: {resolved}", path)
            else:
                return str(resolved), found.st_size
        except FileNotFoundError:
            self.problem(f"{what} not found: {resolved}", path)
        except OSError as exc:
            self.problem(f"cannot read {what} {value}: {exc.strerror or exc}", path)
        return str(resolved), 0

    def _include_target(self, name: str, target: Path, path: tuple[Any, ...]) -> str | None:
        """The included file's resolved path, or None (the problem said) when it may not be included: outside
        the plan's folder, in a cycle, or nested too deep."""
        try:
            confined = inside(target, Path(self.chain[0]).parent)  # the plan's folder, as for data_file
            resolved = str(target.resolve())
        except OSError as exc:
            self.problem(f"cannot read include {name}: {exc.strerror}", path)
            return None
        if not confined:
            self.problem(f"include {name} is outside the plan's folder: a plan may only include files "
                         "that sit beside it or below it", path, hint="move the file next to the plan")
        elif resolved in self.chain:
            self.problem(f"include cycle: {target} includes itself (via {' -> '.join(self.chain)})", path)
        elif len(self.chain) >= MAX_INCLUDE_DEPTH:
            self.problem(f"includes nested deeper than {MAX_INCLUDE_DEPTH}", path)
        else:
            return resolved
        return None

    def _mailbox(self, value: dict[str, Any], path: tuple[Any, ...], captured: set[str]) -> None:
        """A mailbox URL written out is read now; a templated one as its case starts (runner.run.mailsteps),
        or at its step if it reads a capture; listen:// cannot (it is opened as the case starts)."""

        mailbox = value["mailbox"]
        if template.is_template(mailbox):
            late = template.names_used(mailbox) & (captured | {"ehlo"})
            if mailbox.lstrip().startswith("listen:") and late:
                self.problem(f"a listen:// mailbox cannot use {', '.join(sorted(late))}: smtprun starts listening "
                             "as the case starts, before any reply is read", (*path, "mailbox"),
                             hint="write the address out, or take it from a variable")
        elif not self._mailbox_url(value, path):
            return
        for key in ("body", "ehlo", "recipient", "diagnostic"):
            if isinstance(value.get(key), str):
                self.regex(value[key], (*path, key))
        for name, rx in (value.get("headers") or {}).items():
            self.regex(rx, (*path, "headers", name))

    def _mailbox_url(self, value: dict[str, Any], path: tuple[Any, ...]) -> bool:
        """A mailbox URL written out, and the options that go with its kind; False when it is no URL."""
        from runner.mail.url import parse_mailbox, url_password

        mailbox = value["mailbox"]
        try:
            url = parse_mailbox(mailbox)
        except ValueError as exc:
            self.loaded.source.hide_text(url_password(mailbox) or "")  # not shown in the excerpt either
            self.problem(str(exc), (*path, "mailbox"))
            return False
        if url.kind != "listen":
            for key in ("ehlo", "tls", "certfile", "keyfile"):
                if key in value:
                    self.problem(f"{key}: is for a listen:// mailbox, not {url.kind}:", (*path, key))
        if "folder" in value and url.kind not in ("imap", "imaps", "maildir"):
            self.problem(f"folder: a {url.kind}: mailbox has no folders (IMAP and Maildir do)", (*path, "folder"))
        return True

    def _smuggle(self, value: dict[str, Any], path: tuple[Any, ...], captured: set[str]) -> dict[str, Any]:
        """The smuggling test's options, the envelope taken from the variables `sender` and `rcpt` unless given."""
        from runner.smtp.smuggling import END_OF_DATA

        if value["ending"] == END_OF_DATA:
            self.problem("smuggle: ending is the real end of data <CR><LF>.<CR><LF> (RFC 5321 §4.1.1.4): "
                         "nothing would be smuggled", (*path, "ending"), hint='give a broken one, e.g. "\n.\n"')
        full = {"pause": SMUGGLE_PAUSE, **value}
        for key in ("sender", "rcpt"):
            if key not in value:
                full[key] = "{{ " + key + " }}"
                if key not in self.variables | captured:
                    self.problem(f"smuggle: no {key} given, and no variable '{key}' to take it from", path,
                                 hint=f"give {key}: in the step, define {key} under vars:, or pass --var {key}=...")
        return full

    def _strings(self, value: Any, path: tuple[Any, ...], captured: set[str]) -> None:
        if isinstance(value, str):
            self.template(value, path, captured)
        elif isinstance(value, dict):
            for k, v in value.items():
                if k not in ("capture", "when"):  # regexes and expressions are checked as such
                    self._strings(v, (*path, k), captured)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self._strings(v, (*path, i), captured)

    def expression(self, text: str, path: tuple[Any, ...], captured: set[str]) -> None:
        """A `when:` condition, checked like a template that prints it."""
        self.template("{{ " + text + " }}", path, captured, force=True)

    def template(self, text: str, path: tuple[Any, ...], captured: set[str], force: bool = False) -> None:
        if not (force or template.is_template(text)):
            return
        try:
            used = template.names_used(text)
            env_names = template.env_refs(text)
        except template.RenderError as exc:
            self.problem(str(exc), path)
            return
        refused = template.check_structure(text)
        if refused:
            self.problem(refused, path)
            return
        self.read |= used
        known = self.variables | captured | template.BUILTIN_NAMES
        for name in sorted(used - known):
            hint = did_you_mean(name, known - template.BUILTIN_NAMES) or \
                f"define it under vars:, pass --var {name}=..., or capture it in an earlier step"
            self.problem(f"undefined variable '{name}'", path, hint=hint)
        for name in sorted(env_names):
            if name not in os.environ:
                self.problem(f"environment variable {name} is not set", path)
        if used <= set(self.values) | template.BUILTIN_NAMES:
            self._dry_render(text, path)

    def _dry_render(self, text: str, path: tuple[Any, ...]) -> None:
        """Render a template that needs nothing from the server, to refuse sandbox escapes up front."""
        try:
            render_early(text, self.values, template.MAX_BODY if _is_body(path) else template.MAX_VALUE)
        except template.RenderError as exc:
            if exc.forbidden:
                self.problem(str(exc), path)

    def envelope(self, command: str, path: tuple[Any, ...]) -> None:
        """Warn of a MAIL FROM or RCPT TO path without "<" ">" (runner.plan.envelope)."""
        warning = envelope_warning(self.loaded, command, path, self.values, self.unsettled)
        if warning is not None:
            self.warnings.append(warning)

    def regex(self, pattern: str, path: tuple[Any, ...]) -> None:
        if template.is_template(pattern):
            return
        try:
            re.compile(pattern)
        except re.error as exc:
            self.problem(f"bad regex {pattern!r}: {exc}", path)
