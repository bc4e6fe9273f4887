"""The shape of ``gateway.yaml`` as data: keys, types, enums, ranges and defaults.

One description drives the structural check (``structure.check``) and the
canonical form (``structure.normalize``) that import stores and export writes,
so the two cannot drift. Key order here is the key order of an export.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from registry.choices import (
    JWT_ALGORITHMS,
    Backoff,
    CacheScope,
    CallMethod,
    DownstreamAuthType,
    EndpointMethod,
    RateLimitScope,
    RetryOn,
    Transport,
)

MISSING: Any = object()  # no default: the key is omitted from the canonical form when absent


@dataclass(frozen=True)
class Field:
    kind: str  # str | int | number | bool | mapping | list | map_of | json
    required: bool = False
    default: Any = MISSING
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    fields: dict[str, Field] | None = None  # mapping
    items: Field | None = None  # list, map_of values
    secret_hint: str | None = None  # mapping: unknown secret-looking keys get this advice
    omit_empty: bool = False  # canonical form leaves out an empty list/mapping
    omit_default: bool = False  # canonical form leaves out the default (an opt-in flag changes no old export)
    default_by: Callable[[Mapping[str, Any]], Any] | None = None  # a default that depends on the siblings


def _default_retry_on() -> list[str]:
    return ["5xx", "timeout"]


def _fields(**kwargs: Field) -> dict[str, Field]:
    return dict(kwargs)


RATE_LIMIT = Field(
    "mapping",
    fields=_fields(
        scope=Field("str", required=True, choices=tuple(RateLimitScope.values)),
        limit=Field("int", required=True, minimum=1),
        window_s=Field("int", required=True, minimum=1),
    ),
)
RATE_LIMITS = Field("list", items=RATE_LIMIT, default=list)

JWT = Field(
    "mapping",
    secret_hint="put the secret in an environment variable and name it with 'secret_env'",
    fields=_fields(
        algorithms=Field("list", items=Field("str", choices=JWT_ALGORITHMS), default=lambda: ["HS256"]),
        secret_env=Field("str"),
        public_key_file=Field("str"),
        jwks_url=Field("str"),
        issuer=Field("str"),
        audience=Field("str"),
        user_claim=Field("str", default="sub"),
        leeway_s=Field("int", minimum=0, default=0),
    ),
)

OAUTH2_INTROSPECTION = Field(
    "mapping",
    secret_hint="name the environment variables with 'client_id_env' and 'client_secret_env'",
    fields=_fields(
        url=Field("str", required=True),
        client_id_env=Field("str", required=True),
        client_secret_env=Field("str", required=True),
        cache_s=Field("int", minimum=0, maximum=86400, default=60),
        user_claim=Field("str", default="sub"),
    ),
)

CLIENT_AUTH = Field(
    "mapping",
    default=lambda: {"type": "none"},
    secret_hint="clients authenticate with their own credentials; the gateway stores none",
    fields=_fields(
        # one of ClientAuthType, or a list of them (checked in client_auth_rules)
        type=Field("json", required=True),
        header=Field("str"),
        jwt=JWT,
        oauth2_introspection=OAUTH2_INTROSPECTION,
        session=Field("mapping", fields=_fields()),
    ),
)

LAYER = Field(
    "mapping",
    required=True,
    fields=_fields(
        name=Field("str", required=True),
        owner=Field("str", default=""),
        base_path=Field("str", required=True),
        transport=Field("str", choices=tuple(Transport.values), default="rest"),
        auth=CLIENT_AUTH,
        rate_limits=RATE_LIMITS,
    ),
)

SERVICE_AUTH = Field(
    "mapping",
    default=lambda: {"type": "none"},
    secret_hint="put it in an environment variable and name it with 'token_env' or 'key_env'",
    fields=_fields(
        type=Field("str", required=True, choices=tuple(DownstreamAuthType.values)),
        token_env=Field("str"),
        header=Field("str"),
        key_env=Field("str"),
        cert_file=Field("str"),
        key_file=Field("str"),
        ca_file=Field("str"),
    ),
)

SERVICE = Field(
    "mapping",
    fields=_fields(
        base_url=Field("str", required=True),
        owner=Field("str", default=""),
        avg_latency_ms=Field("int", minimum=0, nullable=True),
        sla=Field("number", minimum=0, maximum=100, nullable=True),
        timeout_ms=Field("int", minimum=1, default=1000),
        auth=SERVICE_AUTH,
        breaker=Field(
            "mapping",
            default=dict,
            fields=_fields(
                failure_threshold=Field("int", minimum=1, default=5),
                window_s=Field("int", minimum=1, default=60),
                open_s=Field("int", minimum=1, default=30),
                half_open_probes=Field("int", minimum=1, default=3),
                min_calls=Field("int", minimum=1, nullable=True),
                failure_rate=Field("number", minimum=1, maximum=100, nullable=True),
            ),
        ),
        retry=Field(
            "mapping",
            default=dict,
            fields=_fields(
                max_retries=Field("int", minimum=0, maximum=10, default=0),
                backoff=Field("str", choices=tuple(Backoff.values), default="exponential"),
                base_ms=Field("int", minimum=0, default=100),
                jitter=Field("bool", default=False),
                retry_on=Field("list", items=Field("str", choices=tuple(RetryOn.values)), default=_default_retry_on),
                budget_percent=Field("number", minimum=0, maximum=100, nullable=True),
                budget_min_per_s=Field("number", minimum=0, nullable=True),
            ),
        ),
        bulkhead=Field(
            "mapping",
            default=dict,
            fields=_fields(
                max_concurrent=Field("int", minimum=1, default=100),
                max_wait_ms=Field("int", minimum=0, default=0),
            ),
        ),
        deadline_header=Field("str"),
        dedupe=Field("bool", default=False, omit_default=True),
        hedge=Field("mapping", fields=_fields(after_ms=Field("int", required=True, minimum=1))),
    ),
)


def _default_call_method(call: Mapping[str, Any]) -> str:
    return "POST" if "graphql" in call else "GET"  # a GraphQL call is a POST (contract section 8)


GRAPHQL = Field(
    "mapping",
    fields=_fields(
        query=Field("str", required=True),  # sent as written; parsed by graphql_rules at check time
        variables=Field("mapping", default=dict, omit_empty=True),  # templates
        operation_name=Field("str"),
    ),
)

CALL = Field(
    "mapping",
    fields=_fields(
        id=Field("str", required=True),
        service=Field("str", required=True),
        stage=Field("int", required=True, minimum=1),
        method=Field("str", choices=tuple(CallMethod.values), default="GET", default_by=_default_call_method),
        path=Field("str", required=True),
        query=Field("mapping", default=dict, omit_empty=True),
        headers=Field("mapping", default=dict, omit_empty=True),
        body=Field("json"),
        required=Field("bool", default=True),
        timeout_ms=Field("int", minimum=1, nullable=True),
        idempotent=Field("bool", default=False),
        fallback=Field("json", nullable=True),
        # Composition (contract section 10): registry/config/composition_rules.py checks them.
        when=Field("str"),
        for_each=Field("str"),
        max_parallel=Field("int", minimum=1),
        cache=Field(
            "mapping",
            fields=_fields(
                ttl_s=Field("int", required=True, minimum=1),
                tags=Field("list", items=Field("str"), default=list, omit_empty=True),
            ),
        ),
        stale_if_error_s=Field("int", minimum=1, nullable=True),
        # GraphQL downstream (contract section 8): registry/config/graphql_rules.py checks it.
        graphql=GRAPHQL,
    ),
)

CACHE = Field(
    "mapping",
    default=dict,
    fields=_fields(
        ttl_s=Field("int", minimum=0, default=0),
        scope=Field("str", choices=tuple(CacheScope.values), default="user"),
        tags=Field("list", items=Field("str"), default=list),
        cdn=Field("bool", default=False),  # contract section 8: registry/config/cdn_rules.py
        invalidate_on=Field(
            "list",
            default=list,
            items=Field(
                "mapping",
                fields=_fields(
                    event=Field("str", required=True),
                    tags=Field("list", required=True, items=Field("str")),
                ),
            ),
        ),
    ),
)

ENDPOINT = Field(
    "mapping",
    fields=_fields(
        name=Field("str", required=True),
        method=Field("str", required=True, choices=tuple(EndpointMethod.values)),
        path=Field("str", required=True),
        purpose=Field("str", default=""),
        timeout_ms=Field("int", minimum=1, default=3000),
        p99_target_ms=Field("int", minimum=1),  # absent: 80 % of timeout_ms (contract section 8)
        cache=CACHE,
        rate_limits=Field("list", items=RATE_LIMIT, default=list, omit_empty=True),
        calls=Field("list", required=True, items=CALL),
        response=Field("json", required=True),
        response_schema=Field("json", nullable=True),
        on_schema_violation=Field("str", choices=("log", "fail")),
    ),
)

DOCUMENT = Field(
    "mapping",
    fields=_fields(
        version=Field("int", required=True),
        layer=LAYER,
        services=Field("map_of", required=True, items=SERVICE),
        endpoints=Field("list", required=True, items=ENDPOINT),
    ),
)

SUPPORTED_VERSION = 1
