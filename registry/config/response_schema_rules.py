"""Checks of an endpoint's response contract (contract section 7): the schema compiles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestration.response_contract import schema_problem
from registry.config.problems import Problem, key_location


def check_response_schema(endpoint: Mapping[str, Any], location: str, out: list[Problem]) -> None:
    """``response_schema`` must be JSON Schema that compiles (located at the failing sub-schema);
    ``on_schema_violation`` means nothing without it."""
    schema = endpoint.get("response_schema")
    where = key_location(location, "response_schema")
    if schema is None:
        if endpoint.get("on_schema_violation") is not None:
            out.append(Problem(key_location(location, "on_schema_violation"), "only used with 'response_schema'"))
        return
    found = schema_problem(schema)
    if found is None:
        return
    path, message = found
    for part in path:
        where = f"{where}{part}" if part.startswith("[") else key_location(where, part)
    out.append(Problem(where, f"not a valid JSON Schema: {message}"))
