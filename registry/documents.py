"""Models to document fragments in the canonical ``gateway.yaml`` form.

Export, the compiler and the admin's validation all see the registry through
these functions, so what is checked, served and exported is one shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from registry import models
from registry.config import schema
from registry.config.structure import normalize

_SERVICE_AUTH_KEYS = {
    "bearer": ("token_env",),
    "api_key": ("header", "key_env"),
    "mtls": ("cert_file", "key_file", "ca_file"),
}


def _present(**values: Any) -> dict[str, Any]:
    """Only the values that are set (empty strings are unset model fields)."""
    return {key: value for key, value in values.items() if value not in ("", None)}


def rate_limits_document(rules: Iterable[models.RateLimitRule]) -> list[dict[str, Any]]:
    return [{"scope": r.scope, "limit": r.limit, "window_s": r.window_s} for r in rules]


def layer_document(layer: models.Layer | None, rules: Iterable[models.RateLimitRule] = ()) -> dict[str, Any]:
    if layer is None:
        return dict(normalize({"name": "Gateway", "base_path": "/"}, schema.LAYER))
    kinds = list(layer.auth_types) if layer.auth_types else [layer.auth_type]
    auth: dict[str, Any] = {"type": list(kinds) if layer.auth_types else layer.auth_type}
    if "api_key" in kinds:
        auth["header"] = layer.api_key_header
    if "oauth2_introspection" in kinds:
        auth["oauth2_introspection"] = _present(
            url=layer.introspection_url,
            client_id_env=layer.introspection_client_id_env,
            client_secret_env=layer.introspection_client_secret_env,
            cache_s=layer.introspection_cache_s,
            user_claim=layer.introspection_user_claim,
        )
    if "session" in kinds:
        auth["session"] = {}
    if "jwt" in kinds:
        auth["jwt"] = _present(
            algorithms=list(layer.jwt_algorithms),
            secret_env=layer.jwt_secret_env,
            public_key_file=layer.jwt_public_key_file,
            jwks_url=layer.jwt_jwks_url,
            issuer=layer.jwt_issuer,
            audience=layer.jwt_audience,
            user_claim=layer.jwt_user_claim,
            leeway_s=layer.jwt_leeway_s,
        )
    raw = {
        "name": layer.name,
        "owner": layer.owner,
        "base_path": layer.base_path,
        "transport": layer.transport,
        "auth": auth,
        "rate_limits": rate_limits_document(rules),
    }
    return dict(normalize(raw, schema.LAYER))


def service_document(service: models.Service) -> dict[str, Any]:
    auth = {"type": service.auth_type}
    for key in _SERVICE_AUTH_KEYS.get(service.auth_type, ()):
        if getattr(service, f"auth_{key}"):
            auth[key] = getattr(service, f"auth_{key}")
    raw = _present(base_url=service.base_url, owner=service.owner, avg_latency_ms=service.avg_latency_ms)
    raw |= _present(sla=service.sla, timeout_ms=service.timeout_ms)
    raw["auth"] = auth
    raw["breaker"] = _prefixed(service, "breaker_", ("failure_threshold", "window_s", "open_s", "half_open_probes"))
    raw["retry"] = _prefixed(service, "retry_", ("max_retries", "backoff", "base_ms", "jitter"))
    raw["retry"]["retry_on"] = list(service.retry_on)
    raw["bulkhead"] = _prefixed(service, "bulkhead_", ("max_concurrent", "max_wait_ms"))
    raw["breaker"] |= _present(min_calls=service.breaker_min_calls, failure_rate=service.breaker_failure_rate)
    raw["retry"] |= _present(budget_percent=service.retry_budget_percent)
    raw["retry"] |= _present(budget_min_per_s=service.retry_budget_min_per_s)
    raw |= _present(deadline_header=service.deadline_header)
    raw["dedupe"] = service.dedupe  # canonical form writes it only when true
    if service.hedge_after_ms is not None:
        raw["hedge"] = {"after_ms": service.hedge_after_ms}
    return dict(normalize(raw, schema.SERVICE))


def _prefixed(instance: Any, prefix: str, keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: getattr(instance, prefix + key) for key in keys}


def call_document(call: models.Call, service_name: str) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": call.call_id,
        "service": service_name,
        "stage": call.stage,
        "method": call.method,
        "path": call.path,
        "query": call.query or {},
        "headers": call.headers or {},
        "required": call.required,
        "idempotent": call.idempotent,
    }
    if call.has_body:
        raw["body"] = call.body
    raw |= _present(timeout_ms=call.timeout_ms, fallback=call.fallback)
    raw |= _present(when=call.when, for_each=call.for_each, max_parallel=call.max_parallel)
    if call.cache_ttl_s is not None:
        raw["cache"] = {"ttl_s": call.cache_ttl_s, "tags": list(call.cache_tags or [])}
    raw |= _present(stale_if_error_s=call.stale_if_error_s)
    if call.graphql_query:
        raw["graphql"] = {"query": call.graphql_query, "variables": call.graphql_variables or {}}
        raw["graphql"] |= _present(operation_name=call.graphql_operation_name)
    return dict(normalize(raw, schema.CALL))


def endpoint_document(
    endpoint: models.Endpoint, calls: Iterable[dict[str, Any]], rules: Iterable[models.RateLimitRule]
) -> dict[str, Any]:
    raw = {
        "name": endpoint.name,
        "method": endpoint.method,
        "path": endpoint.path,
        "purpose": endpoint.purpose,
        "timeout_ms": endpoint.timeout_ms,
        "cache": {
            "ttl_s": endpoint.cache_ttl_s,
            "scope": endpoint.cache_scope,
            "tags": list(endpoint.cache_tags or []),
            "cdn": endpoint.cache_cdn,
            "invalidate_on": list(endpoint.invalidate_on or []),
        },
        "rate_limits": rate_limits_document(rules),
        "calls": list(calls),
        "response": endpoint.response,
    }
    if endpoint.response_schema is not None:
        raw["response_schema"] = endpoint.response_schema
    raw |= _present(on_schema_violation=endpoint.on_schema_violation)
    raw |= _present(p99_target_ms=endpoint.p99_target_ms)
    return dict(normalize(raw, schema.ENDPOINT))
