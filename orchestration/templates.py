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
is how the checker knows which calls a call depends on, and ``Template.reads``
the field paths below them (``("request", "headers", "x-channel")``), which is
how it knows whether an answer depends on who asked. A path hole whose value
would name another resource (null, ``""``, ``.``, ``..``) raises
:class:`EmptyPathSegment` when rendered.
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

from orchestration.jmespath_closures import compile_node

_HOLE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_WHOLE = re.compile(r"^\{\{(.*?)\}\}$", re.DOTALL)

Encoder = Callable[[str], str]
Render = Callable[[Mapping[str, Any]], Any]
FieldPath = tuple[str, ...]  # keys from the root context; () is the whole context
Compiled = tuple[Render, set[FieldPath]]


class TemplateError(ValueError):
    """A template that does not compile; ``location`` says where it is."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.location = location
        self.message = message


class EmptyPathSegment(ValueError):
    """A path hole rendered null, ``""``, ``.`` or ``..``: sent as is, the URL would
    name another resource (``/carts/`` is the collection, ``/carts/..`` its parent)."""

    def __init__(self, value: str) -> None:
        super().__init__(f"a path value rendered {value!r}")
        self.value = value


_NOT_A_SEGMENT = frozenset({"", ".", ".."})


def encode_path_segment(text: str) -> str:
    """Percent-encode ``text`` as exactly one path segment (dots included)."""
    if text in _NOT_A_SEGMENT:
        raise EmptyPathSegment(text)
    return quote(text, safe="").replace(".", "%2E")


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Expression:
    """One compiled JMESPath expression."""

    __slots__ = ("_evaluate", "_parsed", "_path", "reads", "roots", "source")

    def __init__(self, source: str, location: str) -> None:
        self.source = source.strip()
        if not self.source:
            raise TemplateError(location, "empty expression in '{{ }}'")
        try:
            self._parsed: ParsedResult = jmespath.compile(self.source)
        except jmespath_errors.JMESPathError as exc:
            raise TemplateError(location, f"invalid expression '{self.source}': {_first_line(exc)}") from None
        self.reads: frozenset[FieldPath] = frozenset(_root_paths(self._parsed.parsed))
        self.roots: frozenset[str] = frozenset(path[0] for path in self.reads if path)
        self._path = _field_path(self._parsed.parsed)
        self._evaluate = compile_node(self._parsed.parsed)  # the interpreter's semantics, without its dispatch

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        if self._path is not None:
            return _follow(self._path, context)
        try:
            return self._evaluate(context)
        except (jmespath_errors.JMESPathError, TypeError, ValueError):  # jmespath raises Python's errors too
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


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# Nodes evaluated on what their first child gives: only that child reads the root.
_LEFT_FIRST = frozenset(
    {"index_expression", "pipe", "projection", "value_projection", "filter_projection", "flatten", "key_val_pair"}
)


def _root_paths(node: Mapping[str, Any]) -> set[FieldPath]:
    """The field paths an expression reads from the root context, each as deep as the
    syntax tells (``request.body.items[0]`` reads ``("request", "body", "items")``).
    A shorter path stands for everything below it: ``@`` and ``*`` read ``()``."""
    kind = node["type"]
    children = node.get("children", [])
    if kind in {"field", "subexpression"} and _leading_fields(node):
        return {_leading_fields(node)}
    if kind == "subexpression" or kind in _LEFT_FIRST:
        return _root_paths(children[0]) if children else set()
    if kind in {"current", "identity"}:
        return {()}
    if kind in {"expref", "literal", "index", "slice"}:
        return set()
    paths: set[FieldPath] = set()
    for child in children:
        if isinstance(child, Mapping):
            paths |= _root_paths(child)
    return paths


def _leading_fields(node: Mapping[str, Any]) -> FieldPath:
    """The field names a chain starts with (``a.b[0].c`` -> ``("a", "b")``); () when none."""
    kind = node["type"]
    if kind == "field":
        return (node["value"],)
    if kind in _LEFT_FIRST and kind != "key_val_pair":
        return _leading_fields(node["children"][0])
    if kind != "subexpression":
        return ()
    path: FieldPath = ()
    for child in node["children"]:
        path += _leading_fields(child)
        if child["type"] != "field":
            break
    return path


class Template:
    """A compiled JSON-shaped template; ``render`` builds a fresh value."""

    __slots__ = ("_render", "reads", "references", "source")

    def __init__(self, source: Any, render: Render, reads: frozenset[FieldPath]) -> None:
        self.source = source
        self._render = render
        self.reads = reads
        self.references = frozenset(path[0] for path in reads if path)

    def reads_below(self, prefix: FieldPath) -> bool:
        """Whether anything the template reads lies at or below ``prefix`` (reading
        ``request`` whole reads ``request.headers`` too)."""
        return any(path[: len(prefix)] == prefix[: len(path)] for path in self.reads)

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
    render, reads = _compile(source, location, encoder)
    return Template(source, render, frozenset(reads))


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
        reads: set[FieldPath] = set().union(*(r for _, r in items)) if items else set()
        return (lambda ctx: [render(ctx) for render, _ in items]), reads
    if source is None or isinstance(source, (bool, int, float)):
        return (lambda ctx: source), set()
    raise TemplateError(location, f"unsupported template value of type {type(source).__name__}")


def _compile_mapping(source: Mapping[Any, Any], location: str, encoder: Encoder | None) -> Compiled:
    parts: list[tuple[str, Callable[[Mapping[str, Any]], Any]]] = []
    reads: set[FieldPath] = set()
    for key, value in source.items():
        if not isinstance(key, str):
            raise TemplateError(location, f"object keys must be strings, got {key!r}")
        render, child_reads = _compile(value, f"{location}.{key}" if location else key, encoder)
        parts.append((key, render))
        reads |= child_reads
    return (lambda ctx: {key: render(ctx) for key, render in parts}), reads


def _compile_string(source: str, location: str, encoder: Encoder | None) -> Compiled:
    _check_braces(source, location)
    whole = _WHOLE.match(source)
    if whole and "{{" not in whole.group(1):
        expression = Expression(whole.group(1), location)
        if encoder is None:
            return expression.evaluate, set(expression.reads)
        return (lambda ctx: encoder(_as_text(expression.evaluate(ctx)))), set(expression.reads)
    pieces: list[str | Expression] = []
    cursor = 0
    for match in _HOLE.finditer(source):
        pieces.append(source[cursor : match.start()])
        pieces.append(Expression(match.group(1), location))
        cursor = match.end()
    pieces.append(source[cursor:])
    if len(pieces) == 1:
        return (lambda ctx: source), set()
    reads = set().union(*(p.reads for p in pieces if isinstance(p, Expression)))
    encode = encoder or (lambda text: text)

    def render(ctx: Mapping[str, Any]) -> str:
        return "".join(p if isinstance(p, str) else encode(_as_text(p.evaluate(ctx))) for p in pieces)

    return render, reads


def _check_braces(source: str, location: str) -> None:
    stripped = _HOLE.sub("", source)
    if "{{" in stripped or "}}" in stripped:
        raise TemplateError(location, f"unbalanced '{{{{' or '}}}}' in {source!r}")
