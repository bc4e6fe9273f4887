"""Walk a document against ``schema``: report shape problems, or build the canonical form.

``check`` reports every wrong type, unknown key, missing key, enum value and
range with its location; ``normalize`` (for documents that passed) fills the
defaults and orders keys as the schema does, which is exactly what export writes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from registry.config.problems import Problem, index_location, key_location, quoted
from registry.config.schema import MISSING, Field

_TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "number": "a number",
    "bool": "true or false",
    "mapping": "a mapping",
    "map_of": "a mapping",
    "list": "a list",
}
_SECRET_WORDS = re.compile(r"secret|token|password|passwd|credential|key|bearer", re.IGNORECASE)


def _has_type(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind in {"mapping", "map_of"}:
        return isinstance(value, Mapping)
    if kind == "list":
        return isinstance(value, list)
    return True  # json: any value; the template check looks inside


def check(value: Any, spec: Field, location: str, out: list[Problem]) -> None:
    """Append every shape problem of ``value`` (and its children) to ``out``."""
    if value is None and spec.nullable:
        return
    if not _has_type(value, spec.kind):
        out.append(Problem(location, f"expected {_TYPE_NAMES[spec.kind]}, got {quoted(value)}"))
        return
    if spec.choices and value not in spec.choices:
        out.append(Problem(location, f"unknown value {quoted(value)} (expected one of: {', '.join(spec.choices)})"))
    _check_range(value, spec, location, out)
    if spec.kind == "mapping" and spec.fields is not None:
        _check_mapping(value, spec, location, out)
    elif spec.kind == "map_of" and spec.items is not None:
        for key, item in value.items():
            check(item, spec.items, key_location(location, key), out)
    elif spec.kind == "list" and spec.items is not None:
        for index, item in enumerate(value):
            check(item, spec.items, index_location(location, index), out)


def _check_range(value: Any, spec: Field, location: str, out: list[Problem]) -> None:
    if spec.kind not in {"int", "number"}:
        return
    if spec.minimum is not None and value < spec.minimum:
        out.append(Problem(location, f"must be at least {spec.minimum:g}, got {quoted(value)}"))
    if spec.maximum is not None and value > spec.maximum:
        out.append(Problem(location, f"must be at most {spec.maximum:g}, got {quoted(value)}"))


def _check_mapping(value: Mapping[Any, Any], spec: Field, location: str, out: list[Problem]) -> None:
    fields = spec.fields or {}
    for key, item in value.items():
        where = key_location(location, key)
        if key in fields:
            check(item, fields[key], where, out)
        elif spec.secret_hint and isinstance(key, str) and _SECRET_WORDS.search(key):
            out.append(Problem(where, f"secret written inline; {spec.secret_hint}"))
        else:
            out.append(Problem(where, f"unknown key (expected one of: {', '.join(fields)})"))
    for key, field in fields.items():
        if field.required and key not in value:
            out.append(Problem(key_location(location, key), "required key missing"))


def normalize(value: Any, spec: Field) -> Any:
    """The canonical form of a value that passed ``check``."""
    if spec.kind == "mapping" and spec.fields is not None:
        return _normalize_mapping(value, spec.fields)
    if spec.kind == "map_of" and spec.items is not None:
        return {key: normalize(value[key], spec.items) for key in sorted(value)}
    if spec.kind == "list" and spec.items is not None:
        return [normalize(item, spec.items) for item in value]
    if spec.kind == "number" and isinstance(value, int):
        return float(value)
    return value


def _normalize_mapping(value: Mapping[str, Any], fields: Mapping[str, Field]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, field in fields.items():
        if key in value:
            item = value[key]
        elif field.default_by is not None:
            item = field.default_by(value)
        elif field.default is not MISSING:
            item = field.default() if callable(field.default) else field.default
        else:
            continue
        if item is None and field.nullable and field.default is MISSING:
            continue
        if field.omit_empty and item in ({}, []):
            continue
        if field.omit_default and not callable(field.default) and item == field.default:
            continue
        result[key] = normalize(item, field)
    return result
