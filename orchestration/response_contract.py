"""The response contract: an endpoint's ``response_schema`` (JSON Schema), compiled once.

fastjsonschema turns the schema into Python code when the configuration is
loaded (``gateway check``, the compiler), so a request pays for one generated
function call, not for interpreting the schema. Defaults in the schema are never
written into the response (``use_default=False``), and only local references
(``#/...``) are allowed: a remote ``$ref`` would make loading the configuration
fetch a URL.

A violation names the first failing field as a stable label for metrics: array
indices become ``[]`` (``items[].price``), a missing required property is named
(``total``), the whole body is ``(root)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fastjsonschema

SchemaError = fastjsonschema.JsonSchemaDefinitionException
_INDEX = re.compile(r"\[\d+\]")
# keywords whose value is a schema, or a list or mapping of schemas (where a bad one is located)
_ONE = ("items", "additionalItems", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")
_LIST = ("allOf", "anyOf", "oneOf", "items", "prefixItems")
_MAP = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")


@dataclass(frozen=True, slots=True)
class Violation:
    field: str  # a label: "total", "items[].price", "(root)"
    message: str


@dataclass(frozen=True, slots=True)
class ResponseContract:
    """A compiled ``response_schema``; ``violation(body)`` is None when the body conforms."""

    validate: Callable[[Any], Any]

    def violation(self, body: Any) -> Violation | None:
        try:
            self.validate(body)
        except fastjsonschema.JsonSchemaValueException as error:
            return Violation(_field(error), error.message)
        return None


def compile_contract(schema: Any) -> ResponseContract:
    """Raises ``SchemaError`` for a schema that is not valid JSON Schema."""
    if not isinstance(schema, (dict, bool)):
        raise SchemaError("must be a JSON Schema (a mapping or true/false)")
    remote = next(_remote_refs(schema), None)
    if remote is not None:
        raise SchemaError(f"only local references ('#/...') are allowed, got {remote!r}")
    return ResponseContract(fastjsonschema.compile(schema, use_default=False, use_formats=True))


def schema_problem(schema: Any) -> tuple[tuple[str, ...], str] | None:
    """Where in ``schema`` (a key path) and why it does not compile; None when it does.
    The deepest sub-schema that fails on its own is blamed."""
    try:
        compile_contract(schema)
    except SchemaError as error:
        message = str(error) or type(error).__name__
    except Exception as error:  # noqa: BLE001 - whatever the code generator trips on is a bad schema
        message = f"{type(error).__name__}: {error}"
    else:
        return None
    for path, child in _children(schema):
        found = schema_problem(child)
        if found is not None:
            return (*path, *found[0]), found[1]
    return (), message


def _children(schema: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    if not isinstance(schema, dict):
        return
    for key in _ONE:
        if isinstance(schema.get(key), (dict, bool)):
            yield (key,), schema[key]
    for key in _LIST:
        if isinstance(schema.get(key), list):
            for index, item in enumerate(schema[key]):
                yield (key, f"[{index}]"), item
    for key in _MAP:
        if isinstance(schema.get(key), dict):
            for name, item in schema[key].items():
                yield (key, str(name)), item


def _remote_refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            yield ref
        for item in value.values():
            yield from _remote_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _remote_refs(item)


def _field(error: fastjsonschema.JsonSchemaValueException) -> str:
    name = _INDEX.sub("[]", error.name or "data")
    name = name[len("data") :].lstrip(".") if name.startswith("data") else name
    if error.rule == "required" and isinstance(error.rule_definition, list) and isinstance(error.value, dict):
        missing = next((str(key) for key in error.rule_definition if key not in error.value), None)
        if missing is not None:
            name = f"{name}.{missing}" if name else missing
    return name or "(root)"
