"""Checks of endpoints and their call sequences: ids, stages, references, timeouts, routes."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from registry.config.composition_rules import check_composition
from registry.config.graphql_rules import check_graphql
from registry.config.header_rules import check_call_headers
from registry.config.problems import Problem, index_location, key_location, quoted
from registry.config.references import call_resolver, check_template, event_resolver, response_resolver
from registry.config.response_schema_rules import check_response_schema
from registry.config.secrets import check_literal_credentials
from registry.config.services_rules import SLUG

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_IDS = frozenset({"request", "user", "event", "item", "index"})
_PARAM = re.compile(r"\{([^{}]*)\}")


def route_key(method: str, path: str) -> tuple[str, str]:
    """Two routes clash when they differ only in parameter names."""
    return method, _PARAM.sub("{}", path)


def check_endpoint_path(path: Any, location: str, out: list[Problem]) -> None:
    if not isinstance(path, str):
        return
    if not path.startswith("/"):
        out.append(Problem(location, f"must start with '/', got {quoted(path)}"))
    if any(char in path for char in "?#"):
        out.append(Problem(location, f"must not hold a query or fragment, got {quoted(path)}"))
    names = _PARAM.findall(path)
    if "{" in _PARAM.sub("", path) or "}" in _PARAM.sub("", path):
        out.append(Problem(location, f"unbalanced '{{' or '}}' in {quoted(path)}"))
    for name in names:
        if not IDENTIFIER.match(name):
            out.append(Problem(location, f"path parameter {quoted(name)} must be an identifier"))
    for name in sorted({n for n in names if names.count(n) > 1}):
        out.append(Problem(location, f"path parameter {quoted(name)} appears twice"))


def check_endpoint(
    endpoint: Any, location: str, services: Collection[str] | None, out: list[Problem], *, references: bool
) -> None:
    """Everything about one endpoint that needs more than its own fields' types."""
    if not isinstance(endpoint, Mapping):
        return
    name = endpoint.get("name")
    if isinstance(name, str) and not SLUG.match(name):
        out.append(Problem(key_location(location, "name"), "endpoint names must be lower-case slugs"))
    check_endpoint_path(endpoint.get("path"), key_location(location, "path"), out)
    calls = endpoint.get("calls")
    calls = calls if isinstance(calls, list) else []
    stages = _check_call_ids(calls, key_location(location, "calls"), out)
    total = endpoint.get("timeout_ms", 3000)
    for index, call in enumerate(calls):
        where = index_location(key_location(location, "calls"), index)
        _check_call(call, where, stages, services, total, out, references=references)
    check_response_schema(endpoint, location, out)
    resolver = response_resolver(stages) if references else None
    if "response" in endpoint:
        check_template(endpoint["response"], key_location(location, "response"), resolver, out)
    _check_cache(endpoint, key_location(location, "cache"), resolver, out)


def _check_call_ids(calls: list[Any], location: str, out: list[Problem]) -> dict[str, int]:
    """Each call's stage by id (the first of duplicates wins), reporting bad ids."""
    stages: dict[str, int] = {}
    first: dict[str, int] = {}
    for index, call in enumerate(calls):
        call_id = call.get("id") if isinstance(call, Mapping) else None
        if not isinstance(call_id, str):
            continue
        where = key_location(index_location(location, index), "id")
        if call_id in RESERVED_IDS:
            reserved = "call ids must not be request, user, event, item or index"
            out.append(Problem(where, f"{quoted(call_id)} is reserved; {reserved}"))
        elif not IDENTIFIER.match(call_id):
            out.append(Problem(where, f"{quoted(call_id)} must be an identifier (letters, digits, '_')"))
        if call_id in first:
            out.append(Problem(where, f"duplicate call id {quoted(call_id)} (also calls[{first[call_id]}])"))
            continue
        first[call_id] = index
        stage = call.get("stage")
        stages[call_id] = stage if isinstance(stage, int) and not isinstance(stage, bool) else 0
    return stages


def _check_call(
    call: Any,
    location: str,
    stages: Mapping[str, int],
    services: Collection[str] | None,
    total_ms: Any,
    out: list[Problem],
    *,
    references: bool,
) -> None:
    if not isinstance(call, Mapping):
        return
    service = call.get("service")
    if services is not None and isinstance(service, str) and service not in services:
        out.append(Problem(key_location(location, "service"), f"unknown service {quoted(service)}"))
    path = call.get("path")
    if isinstance(path, str) and not (path.startswith("/") and not path.startswith("//")):
        out.append(Problem(key_location(location, "path"), f"must start with a single '/', got {quoted(path)}"))
    timeout = call.get("timeout_ms")
    if _is_int(timeout) and _is_int(total_ms) and timeout > total_ms:
        message = f"{timeout} ms is above the endpoint's total timeout_ms ({total_ms})"
        out.append(Problem(key_location(location, "timeout_ms"), message))
    if call.get("required", True) is True and call.get("fallback") is not None:
        out.append(Problem(key_location(location, "fallback"), "only used by optional calls (required: false)"))
    if call.get("required", True) is True and call.get("stale_if_error_s") is not None:
        message = "only optional calls (required: false) may be answered by a stale result"
        out.append(Problem(key_location(location, "stale_if_error_s"), message))
    check_literal_credentials(call.get("headers"), key_location(location, "headers"), headers=True, out=out)
    check_call_headers(call.get("headers"), key_location(location, "headers"), out)
    check_literal_credentials(call.get("query"), key_location(location, "query"), headers=False, out=out)
    resolver = call_resolver(stages, call.get("stage"), fan_out="for_each" in call) if references else None
    for key in ("path", "query", "headers", "body"):
        if key in call:
            check_template(call[key], key_location(location, key), resolver, out)
    check_composition(call, location, stages, out, references=references)
    check_graphql(call, location, resolver, out)


def _check_cache(endpoint: Mapping[str, Any], location: str, resolver: Any, out: list[Problem]) -> None:
    cache = endpoint.get("cache")
    if not isinstance(cache, Mapping):
        return
    ttl, method = cache.get("ttl_s", 0), endpoint.get("method")
    if _is_int(ttl) and ttl > 0 and isinstance(method, str) and method != "GET":
        out.append(Problem(key_location(location, "ttl_s"), f"only GET endpoints are cached, this one is {method}"))
    if isinstance(cache.get("tags"), list):
        check_template(cache["tags"], key_location(location, "tags"), resolver, out)
    rules = cache.get("invalidate_on")
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if isinstance(rule, Mapping) and isinstance(rule.get("tags"), list):
            where = key_location(index_location(key_location(location, "invalidate_on"), index), "tags")
            check_template(rule["tags"], where, event_resolver, out)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
