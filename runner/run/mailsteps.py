"""The closed-loop steps: `expect_delivery:` (did the message arrive?) and `expect_dsn:` (did its
delivery receipt come back?). Thin: the mailboxes, the reports and the judging are runner.mail's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from runner.errors import RenderError, StepFailed
from runner.mail import judge
from runner.mail.reader import Budget, Options, Wanted
from runner.mail.url import MailboxError, MailboxUrl, parse_mailbox
from runner.mail.wait import open_reader, wait_for
from runner.plan.actions import named
from runner.plan.types import Step
from runner.results import StepResult
from runner.run.context import StepContext
from runner.template import BOOLEAN_WORDS, boolean, is_template, names_used

__all__ = ["MAIL_ACTIONS", "NotStarted", "do_expect_delivery", "do_expect_dsn", "early_mailboxes"]

DEFAULT_WITHIN = 60.0  # seconds: the default wait for a message or a report
MAX_WITHIN = 86400
MAIL_ACTIONS = named("mailbox")


LATE_NAMES = frozenset({"ehlo"})  # learned from the server as the case runs


class NotStarted(StepFailed):
    """A mail step's mailbox (or listener certificate) that cannot be read as the case starts: the case
    does not connect. `why` is the step's own reason, the message says which step and that nothing was sent."""

    def __init__(self, step: Step, why: str) -> None:
        self.step, self.why = step, f"{why}; checked before connecting: nothing was sent"
        super().__init__(f"step {step.index} ({step.file}:{step.line}): {step.action} {self.why}")


def early_mailboxes(steps: tuple[Step, ...], text: Callable[[Step | None, str], str]
                    ) -> list[tuple[MailboxUrl, str, str]]:
    """Every mail step's mailbox that can be read as the case starts, before it connects, read: written
    out, or a template of what is known then (variables, --var, env), not of a capture or `ehlo`. A
    NotStarted names the first that is no mailbox URL. Returned: the listen:// ones, with the certificate
    each offers STARTTLS with (rendered by `text`), for the case to start before it connects."""
    out, captured = [], set()
    every_capture = {name for step in steps for name in step.capture}
    for step in steps:
        if step.action in MAIL_ACTIONS:
            scope = None if _late_params(step, every_capture) else step  # (include parameters: not yet)
            if scope is not None or not is_template(step.value["mailbox"]):
                url = _early_url(step, text, captured)
                if url is not None and url.kind == "listen":
                    out.append((url, _early(text, scope, step, "certfile"), _early(text, scope, step, "keyfile")))
        captured |= set(step.capture)
    return out


def _early_url(step: Step, text: Callable[[Step | None, str], str], captured: set[str]) -> MailboxUrl | None:
    written = step.value["mailbox"]
    if is_template(written) and names_used(written) & (captured | LATE_NAMES):
        return None  # read at its step
    value = _early(text, step, step, "mailbox")
    try:
        url = parse_mailbox(value)
    except MailboxError as exc:
        shown = f"{written!r} renders to {exc.shown!r}" if written != value else repr(exc.shown)
        raise NotStarted(step, f"mailbox: {shown}: {exc.why}") from None
    folder = step.value.get("folder") or ""
    known = folder and not (is_template(folder) and names_used(folder) & captured)
    if url.kind not in FOLDER_KINDS and known and _early(text, step, step, "folder"):  # rendered empty: the URL's
        raise NotStarted(step, no_folders(url))
    return url


FOLDER_KINDS = ("imap", "imaps", "maildir")


def no_folders(url: MailboxUrl) -> str:
    return f"folder: a {url.kind}: mailbox has no folders (IMAP and Maildir do)"


def _late_params(step: Step, every_capture: set[str]) -> bool:
    """An included step's parameters are rendered once for the case, all together, as one of its steps
    first needs them: not as the case starts if any reads a capture of the case (it would keep a stale value)."""
    if step.include is None:
        return False
    params = (*step.include.params.values(), *step.include.defaults.values())
    return any(names_used(v) & (every_capture | LATE_NAMES) for v in params if isinstance(v, str))


def _early(text: Callable[[Step | None, str], str], scope: Step | None, step: Step, key: str) -> str:
    """The step's `key` rendered as the case starts, in the names of `scope` (None: the case's own)."""
    value = step.value.get(key) or ""
    try:
        return text(scope, value) if is_template(value) else value
    except RenderError as exc:
        raise NotStarted(step, f"{key}: {exc}") from None


BOOLEAN_KEYS = ("verify", "plaintext_password", "delete", "received_tls", "tls")


def rendered(session: StepContext, spec: dict[str, Any]) -> dict[str, Any]:
    """The step's regexes rendered (a template names a variable: `ehlo: "{{ mta_name }}"`), and its
    booleans read from their templates (`received_tls: "{{ require_tls }}"`)."""
    out = dict(spec)
    for key in ("body", "ehlo", "recipient", "diagnostic"):
        if isinstance(out.get(key), str):
            out[key] = session.text(out[key])
    if out.get("headers"):
        out["headers"] = {name: session.text(rx) for name, rx in out["headers"].items()}
    if out.get("attachments"):
        out["attachments"] = [{key: session.text(v) for key, v in item.items()} for item in out["attachments"]]
    if out.get("authentication_results"):
        results = out["authentication_results"] = dict(out["authentication_results"])
        results["authserv_id"] = session.text(results["authserv_id"])
    for key in BOOLEAN_KEYS:
        if isinstance(out.get(key), str):
            out[key] = _boolean(session, key, out[key])
    return out


def _boolean(session: StepContext, key: str, template: str) -> bool:
    text = session.text(template)
    value = boolean(text)
    if value is None:
        raise StepFailed(f"{key}: {template!r} renders to {text!r}, not a boolean ({BOOLEAN_WORDS})")
    return value


def _setup(session: StepContext, spec: dict[str, Any], out: StepResult, dsn: bool) -> tuple[Any, Wanted, float]:
    try:
        url = parse_mailbox(session.text(spec["mailbox"]))
    except ValueError as exc:
        raise StepFailed(str(exc)) from None
    folder = session.text(spec["folder"]) if spec.get("folder") else ""  # rendered empty: the URL's folder
    if folder:
        if url.kind not in FOLDER_KINDS:
            raise StepFailed(no_folders(url))
        url = url.with_folder(folder)
    password = session.text(spec.get("password") or "")
    if password:
        session.redactor.add(password)
    options = Options(password, session.text(spec.get("cafile") or ""), spec.get("verify", True),
                      spec.get("plaintext_password", False))
    within = _seconds(session, spec.get("within", DEFAULT_WITHIN))
    message_id = session.message_id
    what = "the delivery report about" if dsn else "the message"
    out.label = f"wait up to {within:g}s for {what} <{message_id}> in {url}"
    loop = asyncio.get_running_loop()

    def log(text: str) -> None:
        loop.call_soon_threadsafe(session.note, text)

    reader = open_reader(url, options, Budget(within), log, session.mail_listeners)
    return reader, Wanted(message_id, dsn=dsn, since=session.started_at), within


def _seconds(session: StepContext, value: Any) -> float:
    """`within:` as written, or rendered from a template: seconds, 0 < s <= MAX_WITHIN."""
    text = session.text(value) if isinstance(value, str) else value
    try:
        seconds = float(text)
    except (TypeError, ValueError):
        raise StepFailed(f"within: {text!r} is not a number of seconds") from None
    if not 0 < seconds <= MAX_WITHIN:
        raise StepFailed(f"within: {seconds:g} is not between 0 and {MAX_WITHIN} seconds")
    return seconds


def _facts(reader: Any, outcome: Any) -> dict[str, Any]:
    facts = {"mailbox": str(reader.url), "waited": round(outcome.waited, 3), "looks": outcome.looks,
             "found": (outcome.found or outcome.elsewhere) is not None, "deleted": outcome.deleted}
    if outcome.tries:
        facts["failed_tries"] = outcome.tries
    return facts


def _not_found(reader: Any, outcome: Any, within: float, what: str) -> str:
    if outcome.error:
        return f"{outcome.error} (waiting for {what} in {reader.url})"
    down = f"; {outcome.tries} failed tries to reach it" if outcome.tries else ""
    return f"no {what} arrived in {reader.url} within {within:g}s (looked {outcome.looks} times{down})"


def _misfiled(reader: Any, outcome: Any) -> str:
    """The message (or report) is in another folder than the step's: that is the verdict."""
    return f'arrived in folder "{outcome.elsewhere.folder}", not in "{reader.url.folder}"'


async def do_expect_delivery(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    spec = rendered(session, step.value)
    reader, wanted, within = _setup(session, spec, out, dsn=False)
    out.expected = _expected(session, spec)
    outcome = await wait_for(reader, wanted, delete=spec.get("delete", False))
    out.details = facts = _facts(reader, outcome)
    found = outcome.found or outcome.elsewhere
    if found is None:
        raise StepFailed(_not_found(reader, outcome, within, f"message with Message-ID <{wanted.message_id}>"))
    arrived = found.arrived or time.time()
    latency = None if session.accepted_at is None else max(0.0, arrived - session.accepted_at)
    problems, more = judge.delivery(found, spec, session.nameservers, latency)
    facts.update(more)
    if outcome.elsewhere is not None:
        facts["expected_folder"] = reader.url.folder
        raise StepFailed(_misfiled(reader, outcome))
    problems += _smtp_checks(found.smtp, spec)
    if found.smtp:
        facts["smtp"] = found.smtp
    if problems:
        raise StepFailed("; ".join(problems))
    return True


_NOT_EXPECTED = ("mailbox", "password", "cafile", "verify", "plaintext_password", "within")  # how, not what


def _expected(session: StepContext, spec: dict[str, Any]) -> str:
    """What the step expects, its templates rendered (the listener's certificate too), the empty ones left out."""
    parts = ["the message arrives"]
    for key, value in spec.items():
        if key in ("certfile", "keyfile", "folder") and isinstance(value, str):
            value = session.text(value)
        if key in _NOT_EXPECTED or value in ("", None, {}):
            continue
        if key == "headers":
            parts += [f"{name} /{rx}/" for name, rx in value.items()]
        elif key == "attachments":
            parts += [f"attachment {a['name']}" + "".join(f" {k} {a[k]}" for k in ("type", "sha256") if k in a)
                      for a in value]
        elif key == "authentication_results" and isinstance(value, dict):
            results = ", ".join(f"{m}={r}" for m, r in value.items() if m != "authserv_id")
            parts.append(f"Authentication-Results from {session.text(str(value.get('authserv_id', '')))}: {results}")
        elif isinstance(value, bool):
            parts.append(f"{key} {str(value).lower()}")  # as the plan writes it
        else:
            parts.append(f"{key} /{value}/" if key in ("body", "ehlo", "recipient") else f"{key} {value}")
    return session.redactor.text(", ".join(parts))


def _smtp_checks(smtp: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """listen://: what the MTA did as a client: its EHLO name, and TLS."""
    problems = []
    if not smtp:
        return [f"{k}: only a listen:// mailbox sees the SMTP session" for k in ("ehlo", "tls") if k in spec]
    if "ehlo" in spec:
        why = judge._search("ehlo", spec["ehlo"], smtp.get("ehlo") or "")
        problems += [why] if why else []
    if "tls" in spec and bool(smtp.get("tls")) != spec["tls"]:
        if smtp.get("tls"):
            problems.append(f"the MTA used STARTTLS ({smtp.get('tls_version')})")
        else:
            offered = "" if smtp.get("starttls_offered") else " (the listener offered none: give it certfile:)"
            problems.append(f"the MTA did not use STARTTLS{offered}")
    return problems


async def do_expect_dsn(session: StepContext, step: Step, out: StepResult, deadline: float) -> bool:
    spec = rendered(session, step.value)
    reader, wanted, within = _setup(session, spec, out, dsn=True)
    out.expected = "a delivery report" + "".join(f", {k} {spec[k]}" for k in ("action", "status", "recipient",
                                                                            "diagnostic") if k in spec)
    outcome = await wait_for(reader, wanted, delete=spec.get("delete", False))
    out.details = facts = _facts(reader, outcome)
    found = outcome.found or outcome.elsewhere
    if found is None:
        raise StepFailed(_not_found(reader, outcome, within, f"delivery report about <{wanted.message_id}>"))
    problems, more = judge.report(found, wanted.message_id, spec)
    facts.update(more, folder=found.folder)
    if (more.get("dsn") or {}).get("nonconformant"):
        session.note(f"the delivery report is not conformant: {more['dsn']['nonconformant']}")
    if outcome.elsewhere is not None:
        facts["expected_folder"] = reader.url.folder
        raise StepFailed(_misfiled(reader, outcome))
    if problems:
        raise StepFailed("; ".join(problems))
    return True
