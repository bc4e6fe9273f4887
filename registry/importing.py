"""Document to models: replace the whole configuration (callers hold the transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry import models
from registry.config.schema import DOCUMENT
from registry.config.structure import normalize

_JWT_TEXT_KEYS = ("secret_env", "public_key_file", "jwks_url", "issuer", "audience")


def configuration_replace(document: Mapping[str, Any]) -> None:
    """Delete the layer, services and endpoints, and create those of ``document``."""
    doc = normalize(document, DOCUMENT)
    models.Endpoint.objects.all().delete()  # calls and endpoint rate limits cascade
    models.Service.objects.all().delete()
    models.Layer.objects.all().delete()
    _layer_create(doc["layer"])
    services = {name: _service_create(name, service) for name, service in doc["services"].items()}
    for position, endpoint in enumerate(doc["endpoints"]):
        _endpoint_create(endpoint, position, services)


def _rate_limits_create(rules: list[Mapping[str, Any]], **owner: Any) -> None:
    models.RateLimitRule.objects.bulk_create(
        models.RateLimitRule(position=i, scope=r["scope"], limit=r["limit"], window_s=r["window_s"], **owner)
        for i, r in enumerate(rules)
    )


def _layer_create(layer: Mapping[str, Any]) -> models.Layer:
    auth = layer["auth"]
    jwt = auth.get("jwt", {})
    kinds = auth["type"] if isinstance(auth["type"], list) else []  # a list: its first is auth_type too
    introspection = auth.get("oauth2_introspection", {})
    row = models.Layer.objects.create(
        name=layer["name"],
        owner=layer["owner"],
        base_path=layer["base_path"],
        transport=layer["transport"],
        auth_type=kinds[0] if kinds else auth["type"],
        auth_types=kinds,
        **{f"introspection_{key}": value for key, value in introspection.items()},
        api_key_header=auth.get("header", "X-API-Key"),
        jwt_algorithms=jwt.get("algorithms", ["HS256"]),
        jwt_user_claim=jwt.get("user_claim", "sub"),
        jwt_leeway_s=jwt.get("leeway_s", 0),
        **{f"jwt_{key}": jwt.get(key, "") for key in _JWT_TEXT_KEYS},
    )
    _rate_limits_create(layer["rate_limits"], layer=row)
    return row


def _service_create(name: str, service: Mapping[str, Any]) -> models.Service:
    fields: dict[str, Any] = {f"auth_{key}": value for key, value in service["auth"].items()}
    for section in ("breaker", "retry", "bulkhead"):
        fields |= {f"{section}_{key}": value for key, value in service[section].items()}
    fields["retry_on"] = fields.pop("retry_retry_on")
    return models.Service.objects.create(
        name=name,
        base_url=service["base_url"],
        owner=service["owner"],
        avg_latency_ms=service.get("avg_latency_ms"),
        sla=service.get("sla"),
        timeout_ms=service["timeout_ms"],
        deadline_header=service.get("deadline_header", ""),
        dedupe=service.get("dedupe", False),
        hedge_after_ms=(service.get("hedge") or {}).get("after_ms"),
        **fields,
    )


def _endpoint_create(endpoint: Mapping[str, Any], position: int, services: Mapping[str, models.Service]) -> None:
    cache = endpoint["cache"]
    row = models.Endpoint.objects.create(
        name=endpoint["name"],
        method=endpoint["method"],
        path=endpoint["path"],
        purpose=endpoint["purpose"],
        timeout_ms=endpoint["timeout_ms"],
        response=endpoint["response"],
        cache_ttl_s=cache["ttl_s"],
        cache_scope=cache["scope"],
        cache_tags=cache["tags"],
        invalidate_on=cache["invalidate_on"],
        position=position,
        response_schema=endpoint.get("response_schema"),
        on_schema_violation=endpoint.get("on_schema_violation", ""),
        p99_target_ms=endpoint.get("p99_target_ms"),
        cache_cdn=cache["cdn"],
    )
    _rate_limits_create(endpoint.get("rate_limits", []), endpoint=row)
    models.Call.objects.bulk_create(_call_build(row, call, i, services) for i, call in enumerate(endpoint["calls"]))


def _call_build(endpoint: models.Endpoint, call: Mapping[str, Any], position: int, services: Any) -> models.Call:
    return models.Call(
        endpoint=endpoint,
        call_id=call["id"],
        service=services[call["service"]],
        stage=call["stage"],
        method=call["method"],
        path=call["path"],
        query=call.get("query", {}),
        headers=call.get("headers", {}),
        has_body="body" in call,
        body=call.get("body"),
        required=call["required"],
        timeout_ms=call.get("timeout_ms"),
        idempotent=call["idempotent"],
        fallback=call.get("fallback"),
        stale_if_error_s=call.get("stale_if_error_s"),
        position=position,
        when=call.get("when", ""),
        for_each=call.get("for_each", ""),
        max_parallel=call.get("max_parallel"),
        cache_ttl_s=call["cache"]["ttl_s"] if "cache" in call else None,
        cache_tags=call["cache"].get("tags", []) if "cache" in call else [],
        graphql_query=call.get("graphql", {}).get("query", ""),
        graphql_variables=call.get("graphql", {}).get("variables", {}),
        graphql_operation_name=call.get("graphql", {}).get("operation_name", ""),
    )
