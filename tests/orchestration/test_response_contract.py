"""Contract section 7, ``response_schema`` + ``on_schema_violation`` in the engine."""

from __future__ import annotations

import dataclasses

import pytest

from orchestration.errors import ContractViolation
from orchestration.executor import Success
from orchestration.response_contract import SchemaError, compile_contract, schema_problem
from tests.orchestration.engine_kit import Gateway, call, endpoint, reply, service

SCHEMA = {
    "type": "object",
    "required": ["total"],
    "properties": {
        "total": {"type": "number"},
        "items": {"type": "array", "items": {"type": "object", "properties": {"price": {"type": "number"}}}},
    },
}


def _endpoint(action: str, response: object):  # type: ignore[no-untyped-def]
    plain = endpoint(call("cart"), call("tips", required=False, fallback=None), response=response)
    return dataclasses.replace(plain, response_contract=compile_contract(SCHEMA), on_schema_violation=action)


def test_a_conforming_response_passes(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"total": 12.5, "items": [{"price": 12.5}]}))
    gateway = Gateway([service("cart"), service("tips")], downstream, clock)
    result = gateway.executor.run(_endpoint("fail", "{{ cart }}"), request_context)
    assert isinstance(result, Success) and result.body["total"] == 12.5
    assert gateway.recorder.schema_violations == []


def test_log_counts_the_violation_and_serves_the_response(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"total": "12.5"}))
    gateway = Gateway([service("cart"), service("tips")], downstream, clock)
    result = gateway.executor.run(_endpoint("log", "{{ cart }}"), request_context)
    assert isinstance(result, Success) and result.body == {"total": "12.5"}
    [violation] = gateway.recorder.schema_violations
    assert (violation.endpoint, violation.field, violation.failed) == ("test-endpoint", "total", False)


def test_fail_raises_contract_violation(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"items": [{"price": 1}, {"price": "free"}], "total": 1}))
    gateway = Gateway([service("cart"), service("tips")], downstream, clock)
    with pytest.raises(ContractViolation) as raised:
        gateway.executor.run(_endpoint("fail", "{{ cart }}"), request_context)
    assert (raised.value.status, str(raised.value.code)) == (502, "CONTRACT_VIOLATION")
    [violation] = gateway.recorder.schema_violations
    assert (violation.field, violation.failed) == ("items[].price", True)


def test_a_missing_required_field_is_named(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"items": []}))
    gateway = Gateway([service("cart"), service("tips")], downstream, clock)
    gateway.executor.run(_endpoint("log", "{{ cart }}"), request_context)
    assert [v.field for v in gateway.recorder.schema_violations] == ["total"]


def test_the_gateways_markers_are_not_held_to_the_schema(clock, downstream, request_context):
    """partialData/failedServices are the gateway's, not the endpoint's response: an
    additionalProperties: false schema still passes a partial answer."""
    downstream.on("cart", reply(200, {"total": 3}))
    downstream.on("tips", reply(500))
    strict = {
        "type": "object",
        "required": ["total"],
        "additionalProperties": False,
        "properties": SCHEMA["properties"],
    }
    plain = endpoint(call("cart"), call("tips", required=False), response={"total": "{{ cart.total }}"})
    checked = dataclasses.replace(plain, response_contract=compile_contract(strict), on_schema_violation="fail")
    gateway = Gateway([service("cart"), service("tips")], downstream, clock)
    result = gateway.executor.run(checked, request_context)
    assert isinstance(result, Success) and result.body == {"total": 3, "partialData": True, "failedServices": ["tips"]}


def test_schema_defaults_are_not_written_into_the_response(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"total": 1}))
    with_default = {"type": "object", "properties": {"currency": {"type": "string", "default": "EUR"}}}
    plain = endpoint(call("cart"), response="{{ cart }}")
    checked = dataclasses.replace(plain, response_contract=compile_contract(with_default))
    result = Gateway([service("cart")], downstream, clock).executor.run(checked, request_context)
    assert isinstance(result, Success) and result.body == {"total": 1}


def test_bad_schemas_are_located():
    assert schema_problem(SCHEMA) is None
    assert schema_problem({"properties": {"total": {"type": "numbr"}}}) == (("properties", "total"), "Unknown type")
    found = schema_problem({"allOf": [{"type": "object"}, {"minimum": "x"}]})
    assert found == (("allOf", "[1]"), "minimum must be a number")
    with pytest.raises(SchemaError, match="only local references"):
        compile_contract({"$ref": "http://127.0.0.1:1/schema.json"})
    with pytest.raises(SchemaError, match="must be a JSON Schema"):
        compile_contract([1])


# Schemas and bodies for the two-validator check below: what fastjsonschema alone says about
# each body, the contract says too (jsonschema-rs only ever answers "conforms" first).
_SCHEMAS = [
    SCHEMA,
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}, "s": {"maxLength": 2}}},
    {"$schema": "http://json-schema.org/draft-04/schema#", "properties": {"n": {"type": "integer"}}},
    {"properties": {"n": {"exclusiveMinimum": 1}}, "additionalProperties": False},
    {"definitions": {"p": {"type": "number"}}, "properties": {"n": {"$ref": "#/definitions/p"}}},
    {"properties": {"n": {"enum": [1, "a", None]}, "s": {"const": "x"}}},
    {"anyOf": [{"required": ["n"]}, {"required": ["s"]}], "properties": {"n": {"not": {"type": "string"}}}},
    {"properties": {"s": {"format": "email"}}},  # fastjsonschema alone
    {"properties": {"s": {"pattern": "^[a-z]+$"}}},  # fastjsonschema alone
    {"properties": {"l": {"items": [{"type": "integer"}], "additionalItems": False, "minItems": 1}}},
]
_BODIES = [
    {"total": 1, "items": [{"price": 2}]},
    {"total": "1"},
    {"items": [{"price": "2"}]},
    {"n": 1, "s": "ab"},
    {"n": 1.0, "s": "abc"},
    {"n": -1},
    {"n": True},
    {"n": 1.5, "s": "x"},
    {"n": None, "s": "y"},
    {"n": "a"},
    {"s": "not-an-email"},
    {"s": "a@example.com"},
    {"s": "ABC"},
    {"l": [1]},
    {"l": [1, 2]},
    {"l": ["1"]},
    {"l": []},
    {},
    [],
    "text",
]


@pytest.mark.parametrize("schema", _SCHEMAS)
def test_the_quick_acceptance_never_changes_a_verdict(schema):
    contract = compile_contract(schema)
    alone = dataclasses.replace(contract, accepts=None)  # fastjsonschema only, as before
    for body in _BODIES:
        assert contract.violation(body) == alone.violation(body), body


def test_the_quick_acceptance_is_used_only_where_the_validators_agree():
    assert compile_contract(SCHEMA).accepts is not None
    assert compile_contract({"properties": {"s": {"format": "email"}}}).accepts is None
    assert compile_contract({"properties": {"s": {"pattern": "^a"}}}).accepts is None
    assert compile_contract({"$ref": "#/definitions/a", "type": "object", "definitions": {"a": {}}}).accepts is None
    assert compile_contract({"$schema": "https://json-schema.org/draft/2020-12/schema"}).accepts is None


def test_a_value_the_quick_check_cannot_read_is_validated_by_fastjsonschema():
    contract = compile_contract({"type": "object", "properties": {"n": {"type": "string"}}})
    assert contract.violation({1: "x"}) is None  # not JSON (an int key): jsonschema-rs refuses it
    assert contract.violation({"n": 1}) is not None
