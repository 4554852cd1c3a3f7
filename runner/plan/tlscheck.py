"""The client side of TLS as a plan writes it (`cert`, `key`, `sni`, `min_version`, `max_version`, `ciphers`, in
a `starttls:` step or under `target:` for `tls: implicit`), checked before anything is sent: a key needs its
certificate and the reverse, the version range is not empty, the files are there, readable and PEM, and the key
is the certificate's (when both are written out, not templates), OpenSSL knows the cipher list, SNI is a name."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from runner import template
from runner.errors import Problem
from runner.files import open_regular
from runner.net.tlsclient import VERSIONS, cipher_problem, read_client_cert, sni_problem, version_problem
from runner.plan.load import Loaded

__all__ = ["Finding", "check_client_tls", "report_client_tls"]


@dataclass(frozen=True)
class Finding:
    """One thing wrong (or, as a warning, surprising) in the options: its message, the key it is about."""

    message: str
    key: str
    hint: str | None = None
    warning: bool = False


def check_client_tls(options: dict[str, Any], folder: str, where: str) -> list[Finding]:
    """What is wrong with these options; `folder` is the one relative paths are in, `where` names the options
    in messages (`starttls`, `target`)."""
    found: list[Finding] = []
    for given, missing in (("cert", "key"), ("key", "cert")):
        if given in options and missing not in options:
            found.append(Finding(f"{where}.{given} without {missing}: a client certificate needs both its "
                                 "certificate and its private key", given,
                                 hint=f"give {missing}: the PEM file of the "
                                      + ("private key" if missing == "key" else "certificate")))
    for key in ("min_version", "max_version"):
        if key in options and options[key] not in VERSIONS:  # the schema says so too; this says it in words
            found.append(Finding(f"{where}.{key}: unknown TLS version {options[key]!r}", key,
                                 hint=f"one of {', '.join(VERSIONS)}"))
    if not found and (problem := version_problem(options.get("min_version"), options.get("max_version"))):
        found.append(Finding(f"{where}: {problem}", "max_version"))
    found += _files(options, folder, where)
    found += _ciphers(options, where)
    sni = options.get("sni")
    if isinstance(sni, str) and not template.is_template(sni) and (problem := sni_problem(sni)):
        found.append(Finding(f"{where}.{problem}", "sni"))
    return found


def report_client_tls(loaded: Loaded, options: dict[str, Any], path: tuple[Any, ...], where: str,
                      out: tuple[list[Problem], list[Problem]]) -> None:
    """check_client_tls on the options at `path` of a loaded file (relative paths are that file's), each finding
    added to the problems or, as a warning, to the warnings of `out`."""
    problems, warnings = out
    folder = os.path.dirname(loaded.source.name)
    for found in check_client_tls(options, folder, where):
        problem = loaded.problem(found.message, (*path, found.key), hint=found.hint)
        if found.warning:
            problem.severity = "warning"
        (warnings if found.warning else problems).append(problem)


def _literal(options: dict[str, Any], key: str, folder: str) -> str | None:
    value = options.get(key)
    if not isinstance(value, str) or template.is_template(value):
        return None
    return os.path.join(folder, value)


def _files(options: dict[str, Any], folder: str, where: str) -> list[Finding]:
    """Each cert and key file written out: there and readable; both written out: a matching PEM pair."""
    paths = {key: _literal(options, key, folder) for key in ("cert", "key")}
    found: list[Finding] = []
    for key, path in paths.items():
        if path is None:
            continue
        try:
            open_regular(path).close()  # never waits on a FIFO; says what a path that is no file is
        except OSError as exc:
            found.append(Finding(f"{where}.{key}: cannot read {path}: {exc.strerror or exc}", key))
    if found or paths["cert"] is None or paths["key"] is None:
        return found
    try:
        read_client_cert(paths["cert"], paths["key"])
    except OSError as exc:
        key = "key" if exc.filename == paths["key"] else "cert"
        found.append(Finding(f"{where}.{key}: cannot read {exc.filename}: {exc.strerror or exc}", key))
    except ValueError as exc:
        found.append(Finding(f"{where}.{exc}", "key" if str(exc).startswith("key") else "cert"))
    return found


def _ciphers(options: dict[str, Any], where: str) -> list[Finding]:
    ciphers = options.get("ciphers")
    if not isinstance(ciphers, str) or template.is_template(ciphers):
        return []
    if problem := cipher_problem(ciphers):
        return [Finding(f"{where}.{problem}", "ciphers", hint="see `openssl ciphers -v LIST` for what a list selects")]
    if options.get("max_version") in (None, "TLSv1.3"):
        return [Finding(f"{where}.ciphers applies to TLS 1.2 and older: a TLS 1.3 handshake uses OpenSSL's TLS 1.3 "
                        "suites whatever the list says", "ciphers", hint="add max_version: TLSv1.2 to pin the cipher",
                        warning=True)]
    return []
