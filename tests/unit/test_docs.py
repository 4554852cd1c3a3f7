"""docs/plan-format.md keeps up with the schema: every key documented, every example plan valid."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.errors import PlanError
from runner.plan import read_plan

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas" / "plan.schema.json"
DOC_NAME = "docs/plan-format.md"
DOC = ROOT / DOC_NAME

# Keywords whose value is one subschema, or a list or mapping of subschemas, that may hold keys.
_ONE = ("items", "additionalProperties", "contains", "if", "then", "else", "unevaluatedProperties",
        "unevaluatedItems", "propertyNames")
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
_NAMED = ("dependentSchemas", "patternProperties")


def schema_keys(schema: dict[str, Any]) -> dict[str, str]:
    """Every property name the schema allows, each with where it first appears ("step.starttls")."""
    found: dict[str, str] = {}
    seen_refs: set[str] = set()

    def resolve(ref: str) -> Any:
        node: Any = schema
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def walk(node: Any, context: str) -> None:
        if not isinstance(node, dict):
            return  # true/false schemas name no keys
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/") and ref not in seen_refs:  # recursive ones: once
            seen_refs.add(ref)
            walk(resolve(ref), ref.rsplit("/", 1)[-1])
        for name, sub in node.get("properties", {}).items():
            if sub is False:  # a key forbidden here (e.g. a second action in a step), defined elsewhere
                continue
            found.setdefault(name, context)
            walk(sub, f"{context}.{name}")
        for keyword in _ONE:
            walk(node.get(keyword), context)
        for keyword in _MANY:
            for sub in node.get(keyword, []):
                walk(sub, context)
        for keyword in _NAMED:  # not $defs: those are reached through $ref, named after the definition
            for sub in node.get(keyword, {}).values():
                walk(sub, context)

    walk(schema, "plan")
    for name, sub in schema.get("$defs", {}).items():  # a definition nothing refers to yet still counts
        if f"#/$defs/{name}" not in seen_refs:
            seen_refs.add(f"#/$defs/{name}")
            walk(sub, name)
    return found


def yaml_blocks(markdown: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every ```yaml fenced block."""
    for m in re.finditer(r"^```ya?ml[ \t]*\n(.*?)^```[ \t]*$", markdown, re.DOTALL | re.MULTILINE):
        yield markdown.count("\n", 0, m.start()) + 2, m.group(1)


def _complete_plans() -> list[tuple[int, str]]:
    """The example blocks that are whole plans: `steps:` or `cases:` at the top."""
    if not DOC.exists():
        return []
    out = []
    for line, text in yaml_blocks(DOC.read_text("utf-8")):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = None  # not a whole plan (a fragment, or deliberately broken): not run here
        if isinstance(data, dict) and ("steps" in data or "cases" in data):
            out.append((line, text))
    return out


def _values_of(key: str, data: Any) -> Iterator[Any]:
    if isinstance(data, dict):
        for k, v in data.items():
            if k == key:
                yield v
            yield from _values_of(key, v)
    elif isinstance(data, list):
        for item in data:
            yield from _values_of(key, item)


def test_schema_walk_finds_keys_at_every_level() -> None:
    keys = schema_keys(json.loads(SCHEMA.read_text("utf-8")))
    # One key from each kind of place: top level, target, case, step, a step's mapping, an expectation.
    for name in ("cases", "session_timeout", "steps", "pipeline", "min_version", "chunk_size", "enhanced"):
        assert name in keys, name


def test_every_schema_key_is_documented() -> None:
    doc = DOC.read_text("utf-8")
    keys = schema_keys(json.loads(SCHEMA.read_text("utf-8")))
    missing = sorted(f"{context}.{name}" for name, context in keys.items() if f"`{name}`" not in doc)
    assert not missing, f"{DOC_NAME} does not document (as `name`): {', '.join(missing)}"


EXAMPLES = _complete_plans()


def test_the_doc_has_complete_example_plans() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize(("line", "text"), EXAMPLES, ids=[f"line {line}" for line, _ in EXAMPLES])
def test_every_example_plan_is_valid(line: int, text: str, tmp_path: Path) -> None:
    plan = tmp_path / "example.yaml"
    plan.write_text(text, "utf-8")
    data = yaml.safe_load(text)
    for path in (*_values_of("data_file", data), *_values_of("include", data), *_values_of("path", data)):
        if isinstance(path, str) and "{{" not in path and not (tmp_path / path).exists():
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)  # the files it names, beside it
            (tmp_path / path).write_text("steps:\n  - send: NOOP\n    expect: 250\n" if path.endswith(".yaml")
                                         else "Subject: example\n\nBody.\n")
    _client_certificates(data, tmp_path)
    try:
        read_plan(plan)
    except PlanError as exc:
        pytest.fail(f"{DOC_NAME}:{line}: example plan is invalid (its line 1 is this line of the doc):\n{exc}")


def _client_certificates(data: object, folder: Path) -> None:
    """A client certificate and its key, one pair, at every `cert:` and `key:` path the example writes out."""
    import trustme

    pair = trustme.CA().issue_cert("client.example.com")
    for key, pem in (("cert", pair.cert_chain_pems[0]), ("key", pair.private_key_pem)):
        for path in _values_of(key, data):
            if isinstance(path, str) and "{{" not in path and not (folder / path).exists():
                pem.write_to_path(str(folder / path))


def test_every_json_key_is_documented(tmp_path: Path) -> None:
    """docs/json-format.md names (in a table's first column) every key `--json` writes."""
    import io

    from runner.cli import main
    from runner.results import CaseResult, StepResult
    from runner.stats import LoadStats

    plan = tmp_path / "p.yaml"
    plan.write_text("target: {host: 127.0.0.1, port: 9}\ncases:\n  - when: 'false'\n    steps:\n"
                    "      - send: NOOP\n        expect: 250\n")
    out = io.StringIO()
    assert main(["run", str(plan), "--json", "-", "--no-report"], out=out, err=io.StringIO()) == 0
    run = json.loads(out.getvalue())
    case = run["plans"][0]["cases"][0]
    stats = LoadStats()
    stats.add(CaseResult("c", steps=[StepResult(1, 1, "send", "NOOP", status="failed")]))
    load = stats.summary(1.0)
    documented = set(re.findall(r"^\| ((?:`[^`]+`(?:, )?)+) \|", (ROOT / "docs/json-format.md").read_text("utf-8"),
                                re.MULTILINE))
    names = {name for cell in documented for name in re.findall(r"`([^`]+)`", cell)}
    keys = {*run, *run["plans"][0], *case, *case["steps"][0], *load, *load["steps"][0]}
    assert keys - names == set()


def _documented_modules(text: str) -> set[str]:
    """runner/... paths of the modules docs/architecture.md's "The modules" names: each package's paragraph
    (a line starting "`runner/pkg/`", or "Top level, `runner/`"), then its table's `name.py` cells."""
    section = text.split("\n## The modules\n", 1)[1].split("\n## ", 1)[0]
    found, package = set(), None
    for line in section.splitlines():
        start = re.match(r"(?:Top level, )?`(runner/(?:\w+/)?)`", line)
        if start:
            package = start[1]
        elif line.startswith("| `") and package:
            found |= {package + name for name in re.findall(r"`(\w+\.py)`", line.split(" | ")[0])}
    return found


def test_the_architecture_page_names_every_module() -> None:
    """docs/architecture.md lists what runner/ holds now: no module left out, none that is gone."""
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "runner").rglob("*.py")
               if p.name != "__init__.py" and "templates" not in p.parts}
    documented = _documented_modules((ROOT / "docs/architecture.md").read_text("utf-8"))
    assert sorted(modules - documented) == [], "docs/architecture.md (The modules) does not name these"
    assert sorted(documented - modules) == [], "docs/architecture.md (The modules) names modules that are gone"
