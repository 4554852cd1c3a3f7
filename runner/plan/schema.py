"""Check plan data against schemas/plan.schema.json and explain failures like a compiler."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from runner import __version__
from runner.cache import PrivateFolder
from runner.environment import cache_folder
from runner.errors import Problem
from runner.plan.load import Loaded

__all__ = ["SCHEMA_NAME", "ValidationCache", "did_you_mean", "schema", "schema_text", "validate", "validate_fragment"]

SCHEMA_NAME = "plan.schema.json"
_REPO_COPY = Path(__file__).resolve().parents[2] / "schemas" / SCHEMA_NAME


def schema_text() -> str:
    """The schema as shipped: inside the installed package, or beside it in a source checkout."""
    try:
        return resources.files("runner.schemas").joinpath(SCHEMA_NAME).read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return _REPO_COPY.read_text("utf-8")


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(schema_text())


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


@lru_cache(maxsize=1)
def _fragment_validator() -> Any:
    """Included files: `steps:` and default `vars:`, checked with the plan schema's own definitions."""
    from jsonschema import Draft202012Validator

    root = schema()
    fragment = {
        "$defs": root["$defs"],
        "type": "object",
        "additionalProperties": False,
        "required": ["steps"],
        "properties": {k: root["properties"][k] for k in ("description", "vars", "steps")},
    }
    return Draft202012Validator(fragment)


def validate_fragment(loaded: Loaded, cache: ValidationCache | None = None) -> list[Problem]:
    """Schema violations in an included step file."""
    return validate(loaded, _fragment_validator(), cache)


@dataclass(frozen=True)
class ValidationCache:
    """Texts that passed before, so they pass again without loading jsonschema (a miss just validates).

    Each pass is a small file named by a hash of smtprun's version, the schema and the file's text,
    holding that hash again: a changed plan, included file, schema or smtprun is validated again, and
    a file that is not exactly that record (damaged, or not the user's own: runner.cache) counts as
    no pass. An included file is remembered on its own ("fragment"), keyed by its own text.
    """

    folder: Path | None  # None: nothing is remembered
    version: str = __version__

    @classmethod
    def under(cls, cache_dir: Path | None) -> ValidationCache:
        """Kept in cache_dir/valid; remembering nothing when cache_dir is None."""
        return cls(None if cache_dir is None else cache_dir / "valid")

    @classmethod
    def default(cls) -> ValidationCache:
        """Under the cache folder the process environment names (environment.cache_folder)."""
        return cls.under(cache_folder())

    def _record(self, loaded: Loaded, kind: str) -> tuple[str, bytes]:
        parts = (self.version.encode(), kind.encode(), schema_text().encode(), loaded.source.text.encode())
        digest = hashlib.sha256(b"\0".join(parts)).hexdigest()
        return digest, f"smtprun {self.version}: {kind} {digest} passed the schema\n".encode()

    def passed(self, loaded: Loaded, kind: str) -> bool:
        if self.folder is None:
            return False
        name, record = self._record(loaded, kind)
        return PrivateFolder(self.folder).read(name, len(record)) == record

    def remember(self, loaded: Loaded, kind: str) -> None:
        if self.folder is not None:
            PrivateFolder(self.folder).write(*self._record(loaded, kind))


def validate(loaded: Loaded, validator: Any = None, cache: ValidationCache | None = None) -> list[Problem]:
    """Every schema violation in the plan, in file order; empty when the plan is valid.

    A pass is remembered in `cache` (by default ValidationCache.default()), and a text remembered
    there passes without being validated again.
    """
    cache = ValidationCache.default() if cache is None else cache
    kind = "fragment" if validator is not None else "plan"
    if cache.passed(loaded, kind):
        return []
    problems = _validate(loaded, validator)
    if not problems:
        cache.remember(loaded, kind)
    return problems


def _validate(loaded: Loaded, validator: Any = None) -> list[Problem]:
    found: dict[tuple[Any, ...], Problem] = {}
    for error in (validator or _validator()).iter_errors(loaded.data):
        for problem in _explain(error, loaded):
            loc = problem.location
            found.setdefault((loc.line, loc.col, problem.message) if loc else (0, 0, problem.message), problem)
    return [found[k] for k in sorted(found, key=lambda k: (k[0], k[1]))]


_JSON_TYPES = {dict: "a mapping", list: "a list", str: "a string", bool: "true/false",
               int: "a number", float: "a number", type(None): "empty"}


_BOUNDS = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
           "exclusiveMaximum": "less than"}


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _name(path: tuple[Any, ...], root: str = "plan") -> str:
    """What the value at `path` is called: a key's name, 'step'/'case' for a list item, or what the file
    is (`root`: "plan", "included file") for the file as a whole."""
    for i in range(len(path) - 1, -1, -1):
        if isinstance(path[i], str):
            if i < len(path) - 1:
                return {"steps": "step", "cases": "case"}.get(path[i], path[i])
            return path[i]
    return root


def _explain(error: Any, loaded: Loaded) -> list[Problem]:
    """What one jsonschema error means, said about the plan: the explainer for its kind of check,
    or jsonschema's own message where none has more to say."""
    path = tuple(error.absolute_path)
    name = _name(path, loaded.kind)
    dependent = error.validator is None and "dependentSchemas" in error.schema_path
    explain = _together if dependent else _EXPLAINERS.get(error.validator, _generic)
    problems = explain(error, loaded, path, name)
    return _generic(error, loaded, path, name) if problems is None else problems


# Each explainer: (error, loaded, path, name) -> the problems, or None for jsonschema's own message.

def _generic(error: Any, loaded: Loaded, path: tuple[Any, ...], name: str) -> list[Problem]:
    return [loaded.problem(f"{name}: {error.message}", path)]


def _together(error: Any, loaded: Loaded, path: tuple[Any, ...], name: str) -> list[Problem] | None:
    """dependentSchemas: two keys that exclude each other."""
    parts = list(error.schema_path)
    present = parts[parts.index("dependentSchemas") + 1]
    parent = _at(loaded.data, path)
    others = sorted(k for k, v in parent.items() if k != present and v == error.instance) \
        if isinstance(parent, dict) else []
    if not others:
        return None
    first, second = sorted((present, others[0]))
    if name == "step" and others[0] in ("expect", "capture"):  # smuggle: reads and judges every reply itself
        return [loaded.problem(f"'{present}' judges its own replies: '{others[0]}' cannot be given with it", path)]
    if name == "step":
        return [loaded.problem(f"a step does one thing: '{first}' and '{second}' cannot be given together",
                               path, hint="split it into two steps")]
    return [loaded.problem(f"'{first}' and '{second}' cannot be given together in {name}", path)]


def _unknown_keys(error: Any, loaded: Loaded, path: tuple[Any, ...], name: str) -> list[Problem]:
    allowed = sorted(error.schema.get("properties", {}))
    return [_unknown_key(loaded, path, name, extra, allowed) for extra in error.instance
            if extra not in error.schema.get("properties", {})]


def _required(error: Any, loaded: Loaded, path: tuple[Any, ...], name: str) -> list[Problem]:
    missing = error.message.split("'")[1] if "'" in error.message else error.message
    return [loaded.problem(f"missing required key '{missing}' in {name}", path)]


def _alternatives(error: Any, loaded: Loaded, path: tuple[Any, ...], name: str) -> list[Problem]:
    """anyOf / oneOf: the plan's own shape, or the one alternative the value was meant to be."""
    if not path and not isinstance(error.instance, dict):
        return []  # the type error already says the plan must be a mapping
    if error.validator == "oneOf" and not path:
        if "steps" in error.instance and "cases" in error.instance:
            return [loaded.problem("give either 'steps' or 'cases', not both", ("cases",), key=True)]
        return [loaded.problem("a plan needs 'steps:' (one session) or 'cases:' (several)", ())]
    deeper = _best_branch(error)
    if deeper:
        return [p for sub in deeper for p in _explain(sub, loaded)]
    desc = error.schema.get("description", "")
    return [loaded.problem(f"invalid {name}: {_show(error.instance)}" + (f" — {desc}" if desc else ""), path)]


_YAML11_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE]\d+")


def _number_hint(value: Any, want: Any) -> str | None:
    """YAML 1.1 (PyYAML) reads `1e3` and `1.5e3` as strings: an exponent needs a dot and a sign."""
    wants = want if isinstance(want, list) else [want]
    if isinstance(value, str) and {"number", "integer"} & set(wants) and _YAML11_EXPONENT.fullmatch(value):
        mantissa, _, exponent = value.lower().partition("e")
        return f"YAML reads {value} as text; write {mantissa if '.' in mantissa else mantissa + '.0'}e+{exponent}"
    return None


def _type(error: Any, loaded: Loaded, path: tuple[Any, ...], name: str) -> list[Problem]:
    if not path and loaded.kind != "plan":
        return [loaded.problem(f"an {loaded.kind} holds a list of steps, or a mapping with 'steps:' "
                               f"(and 'vars:', 'description:'), not {_kind(error.instance)}", path)]
    want = error.validator_value
    wants = " or ".join(want) if isinstance(want, list) else want
    hint = "a plan starts with 'steps:' or 'cases:'; a bare list of steps is a file to include" \
        if not path and isinstance(error.instance, list) else _number_hint(error.instance, want)
    return [loaded.problem(f"'{name}' must be {_article(wants)}, not {_kind(error.instance)}", path, hint=hint)]


def _const(error: Any, loaded: Loaded, path: tuple[Any, ...], name: str) -> list[Problem] | None:
    if error.validator_value is True:
        return [loaded.problem(f"'{name}' takes only the value true", path)]
    return None


def _enum(error: Any, loaded: Loaded, path: tuple[Any, ...], name: str) -> list[Problem]:
    choices = ", ".join(map(str, error.validator_value))
    return [loaded.problem(f"'{name}' must be one of: {choices} (got {_show(error.instance)})", path)]


def _bound(error: Any, loaded: Loaded, path: tuple[Any, ...], name: str) -> list[Problem]:
    bound = _BOUNDS[error.validator]
    return [loaded.problem(f"'{name}' must be {bound} {error.validator_value}, not {_show(error.instance)}", path)]


def _empty(error: Any, loaded: Loaded, path: tuple[Any, ...], name: str) -> list[Problem]:
    if error.validator == "minProperties" and name == "step":
        return [loaded.problem("an empty step: give an action (send, data, ...) or an expect", path)]
    if name == "authentication_results" and error.instance:  # its authserv_id alone: nothing to check
        return [loaded.problem("'authentication_results' names no result to check: give dkim, spf, dmarc, arc "
                               "or iprev beside authserv_id", path)]
    return [loaded.problem(f"'{name}' must not be empty", path)]


def _variable_name(error: Any, loaded: Loaded, path: tuple[Any, ...], name: str) -> list[Problem]:
    return [loaded.problem(f"'{error.instance}' is not a valid variable name (letters, digits, _)", path)]


_EXPLAINERS = {
    "additionalProperties": _unknown_keys,
    "required": _required,
    "anyOf": _alternatives,
    "oneOf": _alternatives,
    "type": _type,
    "const": _const,
    "enum": _enum,
    **dict.fromkeys(_BOUNDS, _bound),
    "minItems": _empty,
    "minProperties": _empty,
    "propertyNames": _variable_name,
}


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _article(word: str) -> str:
    names = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "a whole number",
             "number": "a number", "boolean": "true or false"}
    return names.get(word, word)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """"did you mean 'rcpt'?" for the one choice closest to a mistyped word, or None when none is close."""
    import difflib  # only for a mistake

    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def _unknown_key(loaded: Loaded, path: tuple[Any, ...], name: str, extra: str, allowed: list[str]) -> Problem:
    from runner.plan.synonyms import meant  # only for a mistake

    synonym = meant(extra, allowed)  # `wait:` is `sleep:`: another word, not a misspelling
    hint = (f"did you mean '{synonym}'?" if synonym else did_you_mean(extra, allowed)) \
        or "allowed here: " + ", ".join(allowed)
    return loaded.problem(f"unknown key '{extra}' in {name}", (*path, extra), key=True, hint=hint)


def _fits_type(errors: list[Any]) -> bool:
    """False when a branch failed on the value's very shape (type, const, enum)."""
    for e in errors:
        if e.relative_path:
            continue
        if e.validator in ("type", "const", "enum"):
            return False
        if e.validator in ("anyOf", "oneOf") and not any(_fits_type(b) for b in _branches(e).values()):
            return False
    return True


def _branches(error: Any) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for sub in error.context:
        out.setdefault(sub.relative_schema_path[0], []).append(sub)
    return out


def _best_branch(error: Any) -> list[Any]:
    """Errors of the one alternative that fits the value's shape, when they lie deeper inside it."""
    fitting = [errs for errs in _branches(error).values() if _fits_type(errs)]
    if len(fitting) != 1:
        return []
    errs = fitting[0]
    if all(not e.relative_path and e.validator not in ("anyOf", "oneOf", "additionalProperties", "required")
           for e in errs):
        return []
    return errs
