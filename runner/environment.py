"""What the program is given by the world it runs in: its streams, its cache folder, its colours.

`cli.main` builds one from the process (`Environment.from_os`); a test builds its own, with
streams it can read back and a cache folder of its own, and needs no subprocess.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

__all__ = ["Environment", "cache_folder"]


def cache_folder(environ: Mapping[str, str] | None = None) -> Path | None:
    """smtprun's cache folder: $XDG_CACHE_HOME/smtprun (~/.cache/smtprun); None with SMTPRUN_NO_CACHE set."""
    environ = os.environ if environ is None else environ
    if environ.get("SMTPRUN_NO_CACHE"):
        return None
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "smtprun")


@dataclass(frozen=True)
class Environment:
    stdin: TextIO
    stdout: TextIO  # what `--json -` and `--junit -` write to, and the human output otherwise
    stderr: TextIO
    cache_dir: Path | None  # None: nothing is cached
    colour: bool | None = None  # None: each stream decides (a terminal, NO_COLOR unset, TERM not dumb)

    @classmethod
    def from_os(
        cls, stdin: TextIO | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> Environment:
        """The process's own: the standard streams (or those given), the cache folder the environment names."""
        return cls(stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr, cache_folder())
