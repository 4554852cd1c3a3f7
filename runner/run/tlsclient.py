"""The client side of TLS as a plan gives it, rendered for the case: a `starttls:` step's options, or the
target's for `tls: implicit`. runner.net.tlsclient makes the handshake's context from them; this module reads
the options (in one place each), says in the transcript what the client offers, and checks the certificate's
name after a handshake whose SNI was another name."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from runner.errors import StepFailed
from runner.net import tls as tlsinfo
from runner.net.tlsclient import OLD_VERSIONS, ClientTls, Handshake, sni_problem
from runner.plan.options import ClientTls as Options
from runner.plan.types import Step, Target
from runner.run.context import StepContext

__all__ = ["CLIENT_KEYS", "after_handshake", "failed", "offered", "prepare", "starttls_handshake", "starttls_options",
           "target_options"]

CLIENT_KEYS = ("cert", "key", "sni", "min_version", "max_version", "ciphers")  # beside verify, cafile, server_name


def starttls_options(step: Step, target: Target) -> Options:
    """A `starttls:` step's options (runner.plan.options.ClientTls, made as the plan was read); a `cafile` it does
    not give is the target's, as its `server_name` is (a private CA written once, under `target:`)."""
    given: Options = step.value
    if given.cafile is not None or not target.cafile:
        return given
    return dataclasses.replace(given, cafile=target.cafile)


def target_options(target: Target) -> Options:
    """The target's TLS options for `tls: implicit`, as a `starttls:` step's."""
    return Options(verify=target.verify, cafile=target.cafile, server_name=target.server_name,
                   **{key: getattr(target, key) for key in CLIENT_KEYS if getattr(target, key) is not None})


def prepare(text: Callable[[str], str], given: Options, name: str, folder: str) -> Handshake:
    """The handshake the options ask for, rendered with `text`; `name` is the certificate's name to check,
    `folder` the one relative cert and key paths are in (the plan's). StepFailed says why it cannot be made."""
    cafile = text(given.cafile or "")
    cert, key = _path(text, given.cert, folder), _path(text, given.key, folder)
    if bool(cert) != bool(key):
        given_one, empty = ("cert", "key") if cert else ("key", "cert")
        raise StepFailed(f"{given_one} is given but {empty} renders empty: a client certificate needs both")
    sni = given.sni
    if isinstance(sni, str):
        sni = text(sni)
        if problem := sni_problem(sni):
            raise StepFailed(problem)
    tls = ClientTls(given.verify, cafile, given.min_version, given.max_version,
                    text(given.ciphers) if given.ciphers else None, cert, key)
    try:
        return Handshake.make(tls, name, sni)
    except OSError as exc:
        what = {cafile: "cafile", cert: "cert", key: "key"}.get(exc.filename or "", "a TLS file")
        raise StepFailed(f"cannot read {what} {exc.filename or ''}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise StepFailed(str(exc)) from None


def _path(text: Callable[[str], str], value: str | None, folder: str) -> str:
    """A cert or key path rendered, and taken from the plan's folder when relative (as data_file: is)."""
    rendered = text(value) if value else ""
    return os.path.join(folder, rendered) if rendered else ""


def offered(given: Options, handshake: Handshake) -> list[str]:
    """What the client offers beyond the defaults, one transcript note each."""
    notes = handshake.describe()
    low, high = given.min_version, given.max_version
    if low or high:
        low = low or ("TLSv1" if high in OLD_VERSIONS else "TLSv1.2")  # Python's own floor is TLS 1.2
        old = " (at OpenSSL security level 0, which TLS 1.0 and 1.1 need)" if low in OLD_VERSIONS else ""
        notes.append(f"TLS versions offered: {low} to {high or 'TLSv1.3'}{old}")
    if given.ciphers:
        notes.append(f"TLS 1.2 and older cipher list offered: {given.ciphers}")
    return notes


def after_handshake(facts: dict[str, Any], handshake: Handshake, close: Callable[[], None]) -> None:
    """The case's TLS facts completed with what the client sent; StepFailed (the connection closed) when the
    certificate is not valid for its name and the SNI sent was another one."""
    facts.update(handshake.facts())
    problem = handshake.name_problem(facts)
    if problem:
        close()
        raise StepFailed(problem)


def failed(exc: StepFailed, given: Options) -> StepFailed:
    """A handshake's failure, naming the versions and ciphers the plan pinned (the likely reason)."""
    pinned = [f"{key} {getattr(given, key)}" for key in ("min_version", "max_version", "ciphers")
              if getattr(given, key)]
    if not pinned:
        return exc
    return StepFailed(f"{exc.reason} (this client offered only {', '.join(pinned)})", exc.reply)


async def starttls_handshake(session: StepContext, given: Options, handshake: Handshake,
                             deadline: float) -> None:
    """After the 220 to STARTTLS: the handshake, said in the transcript with what the client offered."""
    for note in offered(given, handshake):
        session.note(note)
    try:
        facts = await session.start_tls(handshake.context, handshake.sni, given.verify, deadline)
    except StepFailed as exc:
        raise failed(exc, given) from None
    after_handshake(facts, handshake, session.close)
    session.note(tlsinfo.describe_session(facts))
