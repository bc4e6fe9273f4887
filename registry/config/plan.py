"""Build the engine's Plan from a checked document, compiling every template once.

Pure: no database, no settings. ``registry.compiler`` feeds it documents read
from the models; ``gateway check`` and the engine's tests feed it files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestration import plan
from orchestration.response_contract import compile_contract
from orchestration.templates import compile_path_template, compile_template
from registry.config.schema import DOCUMENT
from registry.config.structure import normalize


def plan_from_document(document: Mapping[str, Any], *, version: str) -> plan.Plan:
    """The Plan of a document that passed ``config_check`` (templates compiled here)."""
    doc = normalize(document, DOCUMENT)
    return plan.Plan(
        version=version,
        layer=_layer(doc["layer"]),
        services={name: _service(name, service) for name, service in doc["services"].items()},
        endpoints=tuple(_endpoint(ep, f"endpoints[{i}]") for i, ep in enumerate(doc["endpoints"])),
    )


def _rate_limits(rules: list[Mapping[str, Any]]) -> tuple[plan.RateLimitRule, ...]:
    return tuple(plan.RateLimitRule(scope=r["scope"], limit=r["limit"], window_s=float(r["window_s"])) for r in rules)


def _layer(layer: Mapping[str, Any]) -> plan.Layer:
    auth = layer["auth"]
    jwt = auth.get("jwt")
    kinds = auth["type"] if isinstance(auth["type"], list) else [auth["type"]]
    introspection = auth.get("oauth2_introspection")
    return plan.Layer(
        name=layer["name"],
        base_path=layer["base_path"],
        owner=layer["owner"],
        transport=layer["transport"],
        auth=plan.ClientAuth(
            type=kinds[0],
            jwt=_jwt(jwt) if jwt is not None else None,
            api_key_header=auth.get("header", "X-API-Key"),
            introspection=plan.IntrospectionSettings(**introspection) if introspection is not None else None,
            types=tuple(kinds) if isinstance(auth["type"], list) else (),
        ),
        rate_limits=_rate_limits(layer["rate_limits"]),
    )


def _jwt(jwt: Mapping[str, Any]) -> plan.JwtSettings:
    return plan.JwtSettings(
        algorithms=tuple(jwt["algorithms"]),
        secret_env=jwt.get("secret_env"),
        public_key_file=jwt.get("public_key_file"),
        jwks_url=jwt.get("jwks_url"),
        issuer=jwt.get("issuer"),
        audience=jwt.get("audience"),
        user_claim=jwt["user_claim"],
        leeway_s=jwt["leeway_s"],
    )


def _service(name: str, service: Mapping[str, Any]) -> plan.Service:
    auth, breaker, retry, bulkhead = service["auth"], service["breaker"], service["retry"], service["bulkhead"]
    return plan.Service(
        name=name,
        base_url=service["base_url"].rstrip("/"),
        owner=service["owner"],
        avg_latency_ms=service.get("avg_latency_ms"),
        sla=service.get("sla"),
        timeout_ms=service["timeout_ms"],
        auth=plan.DownstreamAuth(**auth),
        breaker=plan.BreakerPolicy(
            failure_threshold=breaker["failure_threshold"],
            window_s=float(breaker["window_s"]),
            open_s=float(breaker["open_s"]),
            half_open_probes=breaker["half_open_probes"],
            min_calls=breaker.get("min_calls"),
            failure_rate=breaker.get("failure_rate"),
        ),
        retry=plan.RetryPolicy(
            max_retries=retry["max_retries"],
            backoff=retry["backoff"],
            base_ms=retry["base_ms"],
            jitter=retry["jitter"],
            retry_on=frozenset(retry["retry_on"]),
            budget_percent=retry.get("budget_percent"),
            budget_min_per_s=retry.get("budget_min_per_s"),
        ),
        bulkhead=plan.BulkheadPolicy(**bulkhead),
        deadline_header=service.get("deadline_header"),
        dedupe=service.get("dedupe", False),
        hedge=plan.HedgePolicy(after_ms=hedge["after_ms"]) if (hedge := service.get("hedge")) else None,
    )


def _endpoint(endpoint: Mapping[str, Any], location: str) -> plan.Endpoint:
    cache = endpoint["cache"]
    return plan.Endpoint(
        name=endpoint["name"],
        method=endpoint["method"],
        path=endpoint["path"],
        calls=tuple(_call(call, f"{location}.calls[{i}]") for i, call in enumerate(endpoint["calls"])),
        response=compile_template(endpoint["response"], f"{location}.response"),
        purpose=endpoint["purpose"],
        timeout_ms=endpoint["timeout_ms"],
        p99_target_ms=endpoint.get("p99_target_ms"),
        cache=plan.CachePolicy(
            ttl_s=cache["ttl_s"],
            scope=cache["scope"],
            cdn=cache.get("cdn", False),
            tags=tuple(compile_template(tag, f"{location}.cache.tags[{i}]") for i, tag in enumerate(cache["tags"])),
            invalidate_on=tuple(
                plan.InvalidationRule(event=rule["event"], tags=tuple(compile_template(t) for t in rule["tags"]))
                for rule in cache["invalidate_on"]
            ),
        ),
        rate_limits=_rate_limits(endpoint.get("rate_limits", [])),
        response_contract=compile_contract(schema) if (schema := endpoint.get("response_schema")) is not None else None,
        on_schema_violation=endpoint.get("on_schema_violation", "log"),
    )


def _call(call: Mapping[str, Any], location: str) -> plan.Call:
    return plan.Call(
        id=call["id"],
        service=call["service"],
        stage=call["stage"],
        method=call["method"],
        path=compile_path_template(call["path"], f"{location}.path"),
        query=_pairs(call.get("query", {}), f"{location}.query"),
        headers=_pairs(call.get("headers", {}), f"{location}.headers"),
        body=compile_template(call["body"], f"{location}.body") if "body" in call else None,
        required=call["required"],
        timeout_ms=call.get("timeout_ms"),
        idempotent=call["idempotent"],
        fallback=call.get("fallback"),
        when=compile_template(call["when"], f"{location}.when") if "when" in call else None,
        for_each=compile_template(call["for_each"], f"{location}.for_each") if "for_each" in call else None,
        max_parallel=call.get("max_parallel"),
        cache=_call_cache(call["cache"], f"{location}.cache") if "cache" in call else None,
        stale_if_error_s=call.get("stale_if_error_s"),
        graphql=_graphql(call["graphql"], f"{location}.graphql") if "graphql" in call else None,
    )


def _graphql(graphql: Mapping[str, Any], location: str) -> plan.GraphqlRequest:
    variables = compile_template(graphql.get("variables", {}), f"{location}.variables")
    return plan.GraphqlRequest(
        query=graphql["query"], variables=variables, operation_name=graphql.get("operation_name")
    )


def _call_cache(cache: Mapping[str, Any], location: str) -> plan.CallCachePolicy:
    tags = tuple(compile_template(tag, f"{location}.tags[{i}]") for i, tag in enumerate(cache.get("tags", ())))
    return plan.CallCachePolicy(ttl_s=cache["ttl_s"], tags=tags)


def _pairs(section: Mapping[str, Any], location: str) -> tuple[tuple[str, Any], ...]:
    return tuple((key, compile_template(value, f"{location}.{key}")) for key, value in section.items())
