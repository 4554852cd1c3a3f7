"""Words people type for a plan's keys, and the key each one means: `wait: 2` is `sleep: 2`.

Spelling mistakes are caught by likeness (runner.plan.schema.did_you_mean); these are other words for
the same thing, from other tools' test formats and from how a mail admin says it ("wait", "body",
"response", "ignore_errors"), which no likeness finds. A word is only offered where the key it means
is allowed: `tls` in a step means `starttls`, under `target:` it is a key of its own.
"""

from __future__ import annotations

from collections.abc import Iterable

from runner.plan.actions import KINDS

__all__ = ["SYNONYMS", "meant"]

_WORDS = {
    **{name: kind.words for name, kind in KINDS.items() if kind.words},  # step types: their row in the table
    "expect": ("reply", "response", "responds", "expected", "expects", "assert", "code", "status", "result"),
    "when": ("if", "only_if", "condition", "skip_if_not"),
    "continue_on_failure": ("ignore_errors", "ignore_failure", "ignore_failures", "keep_going", "continue"),
    "name": ("label", "title", "desc"),
    "include": ("import", "use", "steps_from"),
    "capture": ("regex", "extract", "save", "store", "register"),
    "target": ("server", "host", "hostname"),  # at the top: the host goes under target:
    "host": ("server", "hostname", "address", "addr"),  # under target:
    "tls": ("ssl", "implicit_tls", "smtps"),  # under target:
    "cases": ("tests", "scenarios", "sessions"),
    "finally": ("always", "teardown", "cleanup", "ensure"),
    "vars": ("variables", "params", "parameters"),
}
SYNONYMS: dict[str, tuple[str, ...]] = {  # a word -> the keys it may mean, the likeliest first
    word: tuple(key for key, words in _WORDS.items() if word in words) for words in _WORDS.values() for word in words}

def meant(word: object, allowed: Iterable[str]) -> str | None:
    """The key `word` is another word for, when that key is allowed here; None otherwise."""
    keys = SYNONYMS.get(str(word).strip().lower().replace("-", "_"), ())
    allowed = set(allowed)
    return next((key for key in keys if key in allowed), None)
