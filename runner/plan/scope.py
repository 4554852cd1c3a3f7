"""The names a template sees, and how the command line gives them."""

from __future__ import annotations

import argparse

__all__ = ["name_value"]


def name_value(text: str) -> tuple[str, str]:
    """NAME=VALUE, as --var and --secret take it."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value
