"""docs/swaks.md has a row for every option the installed swaks documents in `swaks --help`, so the table
cannot fall behind swaks (or name an option swaks does not have)."""

from __future__ import annotations

import re
import shutil
import subprocess

from tests.support.cli import ROOT
from tests.support.mtas import missing

_ITEM = re.compile(r"^( {7}| {11})(-\S.*)$")  # an option's heading in the man page swaks --help prints
_NAME = re.compile(r"--?[A-Za-z0-9][\w<>-]*")


def swaks_options(text: str) -> list[list[str]]:
    """Each documented option's names (`--server`, `-s`), from the headings of the sections OPTION PROCESSING
    to OUTPUT OPTIONS: a line that starts with '-' after a blank line or another heading (a line that starts with
    '-' inside a paragraph is text)."""
    body = text.split("\nOPTION PROCESSING", 1)[1].split("\nDEPRECATIONS", 1)[0]
    items, previous_blank, previous_item = [], True, False
    for line in body.splitlines():
        found = _ITEM.match(line)
        if found and (previous_blank or previous_item):
            heading = found[2].split("  ", 1)[0]  # "-g  This option is ..." has its text on the heading's line
            items.append([_NAME.match(part.strip())[0] for part in heading.split(", ") if _NAME.match(part.strip())])
        previous_blank, previous_item = not line.strip(), bool(found and (previous_blank or previous_item))
    return items


def table_names(markdown: str) -> set[str]:
    """The option names in the first column of every table row of docs/swaks.md."""
    names: set[str] = set()
    for line in markdown.splitlines():
        if line.startswith("| `"):
            first = line.split(" | ", 1)[0]
            names |= {m for m in re.findall(r"(?<![\w-])--?[A-Za-z0-9][\w<>-]*", first)}
    return names


def test_every_swaks_option_has_a_row():
    if shutil.which("swaks") is None:
        missing("swaks is not installed: run scripts/test-env.sh as root")
    text = subprocess.run(["swaks", "--help"], capture_output=True, text=True, timeout=60).stdout
    items = swaks_options(text)
    assert len(items) > 90, f"read only {len(items)} options from swaks --help: has its layout changed?"
    documented = table_names((ROOT / "docs/swaks.md").read_text("utf-8"))
    # every long name, and a name that has no long form (-tls, -g, -4)
    wanted = {name for names in items for name in names if name.startswith("--")} | \
             {names[0] for names in items if not any(n.startswith("--") for n in names)}
    assert sorted(wanted - documented) == [], "docs/swaks.md has no row for these swaks options"


def test_the_reader_finds_headings_not_text():
    page = """SWAKS
OPTION PROCESSING
       --config [<config-file>]
           Text that mentions
           --pipe "exim -bh" inside a paragraph.

       -s, --server [<target-server>[:<port>]]

       --header <header-and-data>, --h-<header> <data>
       --xclient-addr [<string>]
       --xclient-name [<string>]

       -g  This option is a direct alias to "--data -".
DEPRECATIONS
       -g option
"""
    assert swaks_options(page) == [["--config"], ["-s", "--server"], ["--header", "--h-<header>"],
                                   ["--xclient-addr"], ["--xclient-name"], ["-g"]]
