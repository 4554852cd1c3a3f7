"""A rendered template read as a boolean, in one place.

`--var require_tls=false` gives the string "false", which Python and Jinja2 take for true. A key
that takes a boolean from a template (`received_tls: "{{ require_tls }}"`) reads the words below
as the boolean they spell and refuses anything else; a `when:` condition reads a string that
spells a boolean as that boolean, and any other value by its truth as before.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BOOLEAN_WORDS", "boolean", "truth"]

_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
BOOLEAN_WORDS = "true/false, yes/no or 1/0"


def boolean(text: str) -> bool | None:
    """True or False for the words true/false, yes/no, 1/0 (any case, spaces around), else None."""
    return _WORDS.get(text.strip().lower())


def truth(value: Any) -> bool:
    """A `when:` condition's value: a string that spells a boolean is that boolean, else Python's truth."""
    if isinstance(value, str):
        spelled = boolean(value)
        if spelled is not None:
            return spelled
    return bool(value)
