"""README.md and docs/*.md: every relative link reaches a file, every #anchor a heading, and the README stays short."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.DOTALL | re.MULTILINE)
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$", re.MULTILINE)


def without_code(markdown: str) -> str:
    """The text with fenced code blocks blanked, lines kept where they were."""
    return _FENCE.sub(lambda m: "\n" * m[0].count("\n"), markdown)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation but `-` and `_` removed,
    each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays, its target goes
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor; a repeated one gets -1, -2... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for m in _HEADING.finditer(without_code(markdown)):
        base = slug(m[2])
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(markdown: str) -> list[tuple[int, str]]:
    """(line, target) of every inline and reference link outside code."""
    text = without_code(markdown)
    text = _CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m[0]), text)
    found = sorted([*_INLINE_LINK.finditer(text), *_REFERENCE.finditer(text)], key=lambda m: m.start())
    return [(text.count("\n", 0, m.start()) + 1, m[1]) for m in found]


def problems(document: Path, root: Path = ROOT) -> list[str]:
    out = []
    shown = document.relative_to(root)
    for line, target in links(document.read_text("utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # https:, mailto: — not checked here
            continue
        path, _, anchor = target.partition("#")
        goal = (document.parent / path).resolve() if path else document
        if not goal.exists():
            out.append(f"{shown}:{line}: {target}: no such file")
        elif anchor and goal.suffix == ".md" and anchor not in anchors(goal.read_text("utf-8")):
            out.append(f"{shown}:{line}: {target}: no heading #{anchor} in {goal.relative_to(root)}")
    return out


def test_the_slugs_are_githubs():
    assert slug("`smtprun exporter`: Prometheus") == "smtprun-exporter-prometheus"
    assert slug("`--shard K/N` and `smtprun merge`") == "--shard-kn-and-smtprun-merge"
    assert slug("Why a probe failed: `smtprun_probe_failure_info`") == "why-a-probe-failed-smtprun_probe_failure_info"
    assert slug("What smtprun defends against, and its limits") == "what-smtprun-defends-against-and-its-limits"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n## A\n") == {"a", "a-1", "a-2"}


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "other.md").write_text("# Here\n")
    doc = tmp_path / "doc.md"
    doc.write_text("[ok](other.md#here) [gone](missing.md) [off](other.md#there) [self](#nowhere)\n"
                   "`[not a link](missing.md)`\n```\n[nor this](missing.md)\n```\n[web](https://example.com)\n")
    assert problems(doc, tmp_path) == ["doc.md:1: missing.md: no such file",
                             "doc.md:1: other.md#there: no heading #there in other.md",
                             "doc.md:1: #nowhere: no heading #nowhere in doc.md"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(ROOT)) for d in DOCUMENTS])
def test_every_link_resolves(document: Path):
    assert problems(document) == []


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text("utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (at most {README_MAX_LINES})"
