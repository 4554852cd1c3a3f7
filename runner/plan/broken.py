"""A file YAML cannot read whole: whether a line of it may be shown, and where its secrets stand.

A syntax error stops PyYAML before the file is composed, so the secrets the composed nodes would give
(`password:` values, the variables `secrets:` names) are found from what can be read: the events the
parser gave before it stopped, the `secrets:` list read on its own, and on every line whatever follows a
secret's key. Masking too much is the safe side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceStartEvent,
)
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

__all__ = ["meant_as_yaml", "secret_names", "secret_spans"]

_SECRETS_BLOCK = re.compile(r"^secrets[ \t]*:.*(?:\n(?:[ \t#-].*)?)*", re.M)


def meant_as_yaml(text: str, name: str, kind: str) -> bool:
    """Whether a file is a plan (or a file of steps) with a mistake in it, rather than some other file:
    named .yaml or .yml, or opening as a YAML mapping (an included file: or a list). Only such a file
    has a line quoted in an error."""
    if name.lower().endswith((".yaml", ".yml")):
        return True
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, MappingStartEvent):
                return True
            if isinstance(event, SequenceStartEvent):
                return kind != "plan"
            if isinstance(event, (ScalarEvent, AliasEvent)):
                return False
    except yaml.YAMLError:
        pass
    return False


def secret_names(text: str) -> set[str]:
    """The names of a top-level `secrets:` list, read apart from the rest of the file."""
    block = _SECRETS_BLOCK.search(text)
    if not block:
        return set()
    try:
        node = yaml.compose(block[0], Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return set()
    if not isinstance(node, MappingNode):
        return set()
    return {item.value for key, value in node.value if isinstance(key, ScalarNode) and key.value == "secrets"
            and isinstance(value, SequenceNode) for item in value.value if isinstance(item, ScalarNode)}


def secret_spans(text: str, names: Iterable[str], upto: int) -> list[tuple[int, int]]:
    """Character spans of the values of the keys in `names`, as far as the text can be read (the parser is
    not taken past `upto`, where the error is: it stopped there)."""
    names = set(names)
    keys = "|".join(re.escape(n) for n in sorted(names))
    if not keys or not re.search(rf"(?:{keys})[\"']?[ \t]*:", text):
        return []
    spans = _parsed_values(text[:upto], names)
    for found in re.finditer(rf"^([ ]*)(?:.*[\s{{,?-])?[\"']?(?:{keys})[\"']?[ \t]*:[ \t]*(.*)$", text, re.M):
        end = found.end(2)
        if not found[2].split("#", 1)[0].strip():  # the value is on the lines below, indented more than the key
            end = _block_end(text, end, len(found[1]))
        spans.append((found.start(2), end))
    return spans


def _block_end(text: str, at: int, indent: int) -> int:
    """Where the lines after `at` that are blank or indented more than `indent` end."""
    for line in re.finditer(r"\n([^\n]*)", text[at:]):
        body = line[1].rstrip("\r")
        if body.strip() and len(body) - len(body.lstrip(" ")) <= indent:
            return at + line.start()
    return len(text)


def _parsed_values(text: str, names: set[str]) -> list[tuple[int, int]]:
    """The values of hidden keys among the events before the error; one still open runs to the end."""
    spans: list[tuple[int, int]] = []
    stack: list[list] = []  # per open collection: [is a mapping, a key comes next, the key is hidden, hidden from]
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, CollectionEndEvent):
                frame = stack.pop()
                if frame[3] is not None:
                    spans.append((frame[3], event.end_mark.index))
                continue
            if not isinstance(event, NodeEvent):
                continue
            hidden = _place(stack, event, names)
            if isinstance(event, CollectionStartEvent):
                stack.append([isinstance(event, MappingStartEvent), True, False,
                              event.start_mark.index if hidden else None])
            elif hidden:
                spans.append((event.start_mark.index, event.end_mark.index))
    except yaml.YAMLError:
        pass
    spans.extend((frame[3], len(text)) for frame in stack if frame[3] is not None)
    return spans


def _place(stack: list[list], event: NodeEvent, names: set[str]) -> bool:
    """Note where `event` stands in the collection around it; True when it is the value of a hidden key."""
    if not stack or not stack[-1][0]:
        return False
    frame = stack[-1]
    if frame[1]:  # a key
        frame[1], frame[2] = False, isinstance(event, ScalarEvent) and event.value in names
        return False
    hidden, frame[1], frame[2] = frame[2], True, False
    return hidden
