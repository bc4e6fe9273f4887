"""Templates: JSON-shaped values with ``{{ expr }}`` holes, compiled once.

Rules (contract section 1, "Templates"):

* a string that is exactly ``{{ expr }}`` renders to the JSON value of ``expr``;
* ``{{ expr }}`` inside a longer string is interpolated as text (null -> "",
  strings as is, anything else as compact JSON);
* ``expr`` is JMESPath over the request context; a missing field is null and an
  expression that fails at run time (``sum`` over a null) renders null too;
* in a path template each interpolated value is percent-encoded as one path
  segment, so a value can never add ``/``, ``..``, ``?`` or ``#``.

Compilation raises :class:`TemplateError` with the location of the bad string;
``Template.references`` names the root identifiers an expression reads, which
is how the checker knows which calls a call depends on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath.parser import ParsedResult
from jmespath.visitor import TreeInterpreter

_HOLE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_WHOLE = re.compile(r"^\{\{(.*?)\}\}$", re.DOTALL)

Encoder = Callable[[str], str]
Render = Callable[[Mapping[str, Any]], Any]
Compiled = tuple[Render, set[str]]


class TemplateError(ValueError):
    """A template that does not compile; ``location`` says where it is."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.location = location
        self.message = message


def encode_path_segment(text: str) -> str:
    """Percent-encode ``text`` as exactly one path segment (dots included)."""
    return quote(text, safe="").replace(".", "%2E")


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Expression:
    """One compiled JMESPath expression."""

    __slots__ = ("_parsed", "_path", "roots", "source")

    def __init__(self, source: str, location: str) -> None:
        self.source = source.strip()
        if not self.source:
            raise TemplateError(location, "empty expression in '{{ }}'")
        try:
            self._parsed: ParsedResult = jmespath.compile(self.source)
        except jmespath_errors.JMESPathError as exc:
            raise TemplateError(location, f"invalid expression '{self.source}': {_first_line(exc)}") from None
        self.roots: frozenset[str] = frozenset(_root_fields(self._parsed.parsed))
        self._path = _field_path(self._parsed.parsed)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        if self._path is not None:
            return _follow(self._path, context)
        try:
            return _INTERPRETER.visit(self._parsed.parsed, context)
        except jmespath_errors.JMESPathError:
            return None


def _field_path(node: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The keys of a plain ``a.b.c`` expression (most templates), else None."""
    if node["type"] == "field":
        return (node["value"],)
    if node["type"] == "subexpression":
        keys: list[str] = []
        for child in node["children"]:
            part = _field_path(child)
            if part is None:
                return None
            keys.extend(part)
        return tuple(keys)
    return None


def _follow(keys: tuple[str, ...], value: Any) -> Any:
    """What the interpreter's ``visit_field``/``visit_subexpression`` do for a field path,
    without its per-node dispatch: ``.get`` on each value, None once one is missing or
    is not an object."""
    for key in keys:
        try:
            value = value.get(key)
        except AttributeError:
            return None
        if value is None:
            return None
    return value


# ``ParsedResult.search`` builds a new TreeInterpreter (and its function table) on
# every call; the interpreter keeps no per-evaluation state, so one serves all.
_INTERPRETER = TreeInterpreter()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _root_fields(node: Mapping[str, Any]) -> set[str]:
    """The identifiers an expression looks up on the root context."""
    kind = node["type"]
    children = node.get("children", [])
    if kind == "field":
        return {node["value"]}
    if kind in {
        "subexpression",
        "index_expression",
        "pipe",
        "projection",
        "value_projection",
        "filter_projection",
        "flatten",
        "key_val_pair",
    }:
        return _root_fields(children[0]) if children else set()
    if kind in {"expref", "current", "identity", "literal", "index", "slice"}:
        return set()
    roots: set[str] = set()
    for child in children:
        if isinstance(child, Mapping):
            roots |= _root_fields(child)
    return roots


class Template:
    """A compiled JSON-shaped template; ``render`` builds a fresh value."""

    __slots__ = ("_render", "references", "source")

    def __init__(self, source: Any, render: Render, references: frozenset[str]) -> None:
        self.source = source
        self._render = render
        self.references = references

    def render(self, context: Mapping[str, Any]) -> Any:
        return self._render(context)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and other.source == self.source

    def __hash__(self) -> int:
        return hash(json.dumps(self.source, sort_keys=True, default=str))


def compile_template(source: Any, location: str = "", *, encoder: Encoder | None = None) -> Template:
    """Compile a JSON-shaped value. ``encoder`` is applied to interpolated text."""
    render, refs = _compile(source, location, encoder)
    return Template(source, render, frozenset(refs))


def compile_path_template(source: str, location: str = "") -> Template:
    """Compile a downstream path: every value is encoded as one path segment."""
    return compile_template(source, location, encoder=encode_path_segment)


def _compile(source: Any, location: str, encoder: Encoder | None) -> Compiled:
    if isinstance(source, str):
        return _compile_string(source, location, encoder)
    if isinstance(source, Mapping):
        return _compile_mapping(source, location, encoder)
    if isinstance(source, (list, tuple)):
        items = [_compile(item, f"{location}[{i}]", encoder) for i, item in enumerate(source)]
        refs = set().union(*(r for _, r in items)) if items else set()
        return (lambda ctx: [render(ctx) for render, _ in items]), refs
    if source is None or isinstance(source, (bool, int, float)):
        return (lambda ctx: source), set()
    raise TemplateError(location, f"unsupported template value of type {type(source).__name__}")


def _compile_mapping(source: Mapping[Any, Any], location: str, encoder: Encoder | None) -> Compiled:
    parts: list[tuple[str, Callable[[Mapping[str, Any]], Any]]] = []
    refs: set[str] = set()
    for key, value in source.items():
        if not isinstance(key, str):
            raise TemplateError(location, f"object keys must be strings, got {key!r}")
        render, child_refs = _compile(value, f"{location}.{key}" if location else key, encoder)
        parts.append((key, render))
        refs |= child_refs
    return (lambda ctx: {key: render(ctx) for key, render in parts}), refs


def _compile_string(source: str, location: str, encoder: Encoder | None) -> Compiled:
    _check_braces(source, location)
    whole = _WHOLE.match(source)
    if whole and "{{" not in whole.group(1):
        expression = Expression(whole.group(1), location)
        if encoder is None:
            return expression.evaluate, set(expression.roots)
        return (lambda ctx: encoder(_as_text(expression.evaluate(ctx)))), set(expression.roots)
    pieces: list[str | Expression] = []
    cursor = 0
    for match in _HOLE.finditer(source):
        pieces.append(source[cursor : match.start()])
        pieces.append(Expression(match.group(1), location))
        cursor = match.end()
    pieces.append(source[cursor:])
    if len(pieces) == 1:
        return (lambda ctx: source), set()
    refs = set().union(*(p.roots for p in pieces if isinstance(p, Expression)))
    encode = encoder or (lambda text: text)

    def render(ctx: Mapping[str, Any]) -> str:
        return "".join(p if isinstance(p, str) else encode(_as_text(p.evaluate(ctx))) for p in pieces)

    return render, refs


def _check_braces(source: str, location: str) -> None:
    stripped = _HOLE.sub("", source)
    if "{{" in stripped or "}}" in stripped:
        raise TemplateError(location, f"unbalanced '{{{{' or '}}}}' in {source!r}")
