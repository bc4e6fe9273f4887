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

Every answer is validated, and most conform: for a schema made only of the keywords
where the two agree (``_ACCEPTABLE``: types, properties, required, items, bounds, enum,
const, combinators, local ``$ref``; no formats or patterns), jsonschema-rs's compiled
validator first says whether a body conforms (~5x cheaper than the generated Python,
issue 14: the features under 5 % CPU when not triggered), and only a body it rejects
goes through fastjsonschema, which names the violation as before (and has the last
word: a body fastjsonschema accepts has none).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fastjsonschema
import jsonschema_rs

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


# Keywords whose meaning jsonschema-rs and fastjsonschema share (drafts 4, 6, 7); a schema
# with any other keyword (format, pattern, uniqueItems, multipleOf, $id, unknown ones...)
# is checked by fastjsonschema alone.
_ACCEPTABLE = frozenset(
    {
        *("$schema", "$ref", "$comment", "title", "description", "default", "examples", "readOnly", "writeOnly"),
        *("type", "enum", "const", "properties", "required", "additionalProperties"),
        *("minProperties", "maxProperties", "items", "additionalItems", "minItems", "maxItems"),
        *("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength"),
        *("allOf", "anyOf", "oneOf", "not", "definitions", "$defs"),
    }
)
_ANNOTATIONS = frozenset({"$ref", "$comment", "title", "description", "default", "examples", "readOnly", "writeOnly"})
_RS_DRAFTS = (("draft-04", jsonschema_rs.Draft4Validator), ("draft-06", jsonschema_rs.Draft6Validator))


@dataclass(frozen=True, slots=True)
class ResponseContract:
    """A compiled ``response_schema``; ``violation(body)`` is None when the body conforms.
    ``accepts`` (None: none) says quickly that a body conforms; ``validate`` decides otherwise."""

    validate: Callable[[Any], Any]
    accepts: Callable[[Any], bool] | None = None

    def violation(self, body: Any) -> Violation | None:
        accepts = self.accepts
        if accepts is not None:
            try:
                if accepts(body):
                    return None
            except (ValueError, TypeError):  # a value it cannot read (not from JSON): validate decides
                pass
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
    validate = fastjsonschema.compile(schema, use_default=False, use_formats=True)
    return ResponseContract(validate, _fast_acceptor(schema))


def _fast_acceptor(schema: Any) -> Callable[[Any], bool] | None:
    """jsonschema-rs's ``is_valid`` for ``schema`` under the draft fastjsonschema reads it as
    (draft 7 unless ``$schema`` names 4 or 6), or None when a keyword is not ``_ACCEPTABLE``."""
    if not _acceptable(schema):
        return None
    declared = schema.get("$schema", "") if isinstance(schema, dict) else ""
    if not isinstance(declared, str) or (declared and "draft-0" not in declared):
        return None  # a later draft: fastjsonschema reads it as draft 7, jsonschema-rs might not
    validator = next((cls for name, cls in _RS_DRAFTS if name in declared), jsonschema_rs.Draft7Validator)
    try:
        return validator(schema, validate_formats=False).is_valid
    except (ValueError, jsonschema_rs.ValidationError):  # not a schema it takes: fastjsonschema alone
        return None


def _acceptable(schema: Any) -> bool:
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or not _ACCEPTABLE.issuperset(schema):
        return False
    ref = schema.get("$ref")
    if ref is not None and not (isinstance(ref, str) and ref.startswith("#") and _ANNOTATIONS.issuperset(schema)):
        return False  # a remote reference, or keywords beside $ref (which drafts up to 7 ignore)
    return all(_acceptable(child) for _, child in _children(schema))


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
