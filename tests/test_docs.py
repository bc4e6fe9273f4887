"""The repository carries its own reference, and it stays true.

- Every relative link in the README and the docs resolves to a file inside the
  repository (and to a heading, when it names one).
- Every field the configuration schema accepts is in docs/configuration.md, in the
  section of its parent, with its type, default, choices, bounds and nullability as
  the schema has them: a new field, or a changed default, without docs fails here.
- Every environment variable the code reads is listed there too.
"""

from __future__ import annotations

import re
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import environ
import pytest

from registry.config.loading import config_parse
from registry.config.schema import DOCUMENT, MISSING, Field
from registry.config.validation import config_check

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DOC = ROOT / "docs" / "configuration.md"
MARKDOWN = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    ROOT / "bench" / "README.md",
    ROOT / "deploy" / "README.md",
]
# Where the code reads the environment outside settings.py: server config, wiring, the engine.
ENV_SOURCES = ("gateway_project", "orchestration", "registry", "console")
SETTINGS = ROOT / "gateway_project" / "settings.py"

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ENV_READ = re.compile(
    r"""(?:\benv\.\w+\(|environ\.get\(|environ\[|getenv\()\s*["']([A-Z][A-Z0-9_]+)["']""",
)


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans, where links are links."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for line in _FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        match = _HEADING.match(line)
        if not match:
            continue
        slug = _slug(match.group(2))
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _links(path: Path) -> Iterator[str]:
    for match in _LINK.finditer(_prose(path.read_text(encoding="utf-8"))):
        target = match.group(1)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: leave the repository on purpose
            yield target


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_inside_the_repository(doc: Path) -> None:
    broken = []
    for target in _links(doc):
        file_part, _, anchor = target.partition("#")
        resolved = (doc.parent / file_part).resolve() if file_part else doc
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert broken == []


def test_the_readme_links_the_reference_docs() -> None:
    targets = set(_links(ROOT / "README.md"))
    assert {"docs/configuration.md", "docs/architecture.md"} <= {t.partition("#")[0] for t in targets}


# --- every field of gateway.yaml -------------------------------------------------------


def _sections(text: str) -> dict[str, list[str]]:
    """Each heading's text -> the lines under it, up to the next heading."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in _FENCE.sub("", text).splitlines():
        match = _HEADING.match(line)
        if match:
            current = sections.setdefault(match.group(2), [])
        else:
            current.append(line)
    return sections


def _mappings(spec: Field, path: str) -> Iterator[tuple[str, Field]]:
    """Every mapping of the schema with its path as the docs write it:
    ``layer.auth``, ``services.<name>.retry``, ``endpoints[].calls[]``."""
    if spec.kind == "mapping" and spec.fields is not None:
        yield path, spec
        for name, child in spec.fields.items():
            yield from _mappings(child, f"{path}.{name}" if path else name)
    elif spec.kind == "list" and spec.items is not None:
        yield from _mappings(spec.items, f"{path}[]")
    elif spec.kind == "map_of" and spec.items is not None:
        yield from _mappings(spec.items, f"{path}.<name>")


def _flow(value: Any) -> str:
    """A default as the docs write it: YAML flow style, ``""`` for the empty string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_flow(item)}" for key, item in value.items()) + "}"
    if value == "":
        return '""'
    return str(value)


_TYPE_WORDS = {
    "str": "string",
    "int": "integer",
    "number": "number",
    "bool": "boolean",
    "mapping": "mapping",
    "map_of": "mapping",
    "list": "list",
    "json": "JSON",
}


def _row_problems(name: str, field: Field, row: str) -> list[str]:
    cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
    kind, default = cells[1], cells[2]
    expected = []
    if _TYPE_WORDS[field.kind] not in kind:
        expected.append(f"type {_TYPE_WORDS[field.kind]!r} in {kind!r}")
    if field.required and default != "required":
        expected.append(f"default 'required', not {default!r}")
    if field.default is not MISSING:
        value = field.default() if callable(field.default) else field.default
        if not default.startswith(f"`{_flow(value)}`"):
            expected.append(f"default `{_flow(value)}`, not {default!r}")
    choices = field.choices or (field.items.choices if field.items is not None else ())
    expected += [f"choice `{choice}`" for choice in choices if f"`{choice}`" not in row]
    if field.minimum is not None and f"≥ {field.minimum:g}" not in row:
        expected.append(f"'≥ {field.minimum:g}'")
    if field.maximum is not None and f"≤ {field.maximum:g}" not in row:
        expected.append(f"'≤ {field.maximum:g}'")
    if field.nullable and "null" not in kind:
        expected.append(f"'null' in the type {kind!r}")
    return [f"{name}: expected {item}" for item in expected]


_MAPPINGS = list(_mappings(DOCUMENT, ""))


@pytest.mark.parametrize(("path", "spec"), _MAPPINGS, ids=[path or "top level" for path, _ in _MAPPINGS])
def test_every_schema_field_is_documented_as_the_schema_has_it(path: str, spec: Field) -> None:
    sections = _sections(CONFIG_DOC.read_text(encoding="utf-8"))
    title = "Top level" if path == "" else f"`{path}`"
    lines = [line for heading, body in sections.items() if title in heading for line in body]
    assert lines, f"docs/configuration.md has no heading naming {title}"
    problems = []
    for name, field in (spec.fields or {}).items():
        rows = [line for line in lines if line.startswith(f"| `{name}` |")]
        if not rows:
            problems.append(f"{name}: no row under the heading naming {title}")
        else:
            problems += _row_problems(name, field, rows[0])
    assert problems == []


def test_the_schema_walk_sees_the_nested_sections() -> None:
    paths = {path for path, _ in _MAPPINGS}
    assert {"", "layer.auth.jwt", "services.<name>.retry", "endpoints[].calls[]", "layer.rate_limits[]"} <= paths


def test_the_example_file_in_the_reference_passes_the_check() -> None:
    text = CONFIG_DOC.read_text(encoding="utf-8")
    example = text[text.index("## A small complete file") :]
    block = example[example.index("```yaml\n") + len("```yaml\n") : example.index("\n```", example.index("```yaml"))]
    assert [str(problem) for problem in config_check(config_parse(block))] == []


# --- every environment variable --------------------------------------------------------


def _env_reads() -> set[str]:
    """Names read with os.environ, getenv or django-environ, found in the source."""
    names: set[str] = set()
    for package in ENV_SOURCES:
        for source in (ROOT / package).rglob("*.py"):
            names.update(_ENV_READ.findall(source.read_text(encoding="utf-8")))
    return names


def _settings_reads(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Names settings.py asks django-environ for, however it wraps the call (``_switch``)."""
    names: set[str] = set()
    original = environ.Env.get_value

    def recording(self: environ.Env, var: str, *args: Any, **kwargs: Any) -> Any:
        names.add(var)
        return original(self, var, *args, **kwargs)

    monkeypatch.setattr(environ.Env, "get_value", recording)
    runpy.run_path(str(SETTINGS))  # a fresh namespace: Django's configured settings are untouched
    return names


def test_every_environment_variable_the_code_reads_is_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    names = _env_reads() | _settings_reads(monkeypatch)
    assert {"DATABASE_URL", "GATEWAY_METRICS", "PORT", "PROMETHEUS_MULTIPROC_DIR"} <= names
    text = CONFIG_DOC.read_text(encoding="utf-8")
    assert sorted(name for name in names if f"| `{name}` |" not in text) == []
