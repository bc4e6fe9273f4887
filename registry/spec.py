"""The living specification: the mission's template, filled from a compiled Plan.

``spec_build`` turns a plan into sections of tables (the template's titles and
column names, CONTRACT.md section 6); ``spec_markdown`` writes them as Markdown
(``manage.py gateway spec``) and the console renders the same objects as HTML,
adding what only a live system knows. Nothing here is hand-kept: the response
fields' sources come from the compiled templates' reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestration.plan import (
    P99_TARGET_SHARE,
    Call,
    Endpoint,
    GraphqlRequest,
    Plan,
    RateLimitRule,
    RetryPolicy,
    Service,
)
from orchestration.templates import compile_template

_HOLE = re.compile(r"\{\{(.*?)\}\}", re.S)
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class ResponseField:
    """One leaf of the response template and the calls whose results it reads."""

    path: str  # e.g. "pricing.subtotal"
    expression: str
    calls: tuple[str, ...]  # call ids, in the endpoint's order
    services: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    number: int
    endpoint: Endpoint
    title: str  # "POST /v1/checkout/summary"
    settings: Table
    call_sequence: Table
    response_schema: str  # JSON text of the response template
    fields: tuple[ResponseField, ...]


@dataclass(frozen=True, slots=True)
class Spec:
    layer_name: str
    version: str
    overview: Table
    registry: Table
    endpoints: tuple[EndpointSpec, ...]
    error_handling: Table
    breakers: Table
    retries: Table
    resilience_checklist: tuple[tuple[bool, str], ...]
    rate_limits: Table
    caching: Table
    monitoring_checklist: tuple[tuple[bool, str], ...]
    alerts: Table
    notes: tuple[str, ...] = field(default=())


# --- words ---------------------------------------------------------------------------


def service_label(name: str) -> str:
    """``cart`` -> ``Cart``; ``user-profile`` -> ``User Profile`` (the template's words)."""
    return " ".join(part.capitalize() for part in re.split(r"[-_\s]+", name) if part) or name


def _service_title(name: str) -> str:
    label = service_label(name)
    return label if label.lower().endswith("service") else f"{label} Service"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:g}ms"


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _path_hole(expression: str, previous_segment: str) -> str:
    """``{{ request.body.cartId }}`` after ``carts`` reads as ``{id}``, as the template writes it."""
    names = _FIELD.findall(expression.split("|")[0])
    if not names or not re.fullmatch(r"\s*[A-Za-z_][\w.-]*\s*", expression):
        return "{" + expression.strip() + "}"
    name = str(names[-1])
    singular = previous_segment[:-1] if previous_segment.endswith("s") else previous_segment
    squashed = name.lower().replace("_", "").replace("-", "")
    if singular and squashed == singular.lower().replace("-", "").replace("_", "") + "id":
        return "{id}"
    return "{" + name + "}"


def readable_path(source: str) -> str:
    """A call's path template the way people write it: holes as ``{name}``."""
    out: list[str] = []
    position = 0
    for hole in _HOLE.finditer(source):
        out.append(source[position : hole.start()])
        before = "".join(out).rstrip("/").rsplit("/", 1)[-1]
        out.append(_path_hole(hole.group(1), before))
        position = hole.end()
    out.append(source[position:])
    return "".join(out)


def service_call(call: Call) -> str:
    """``Cart: GET /carts/{id}``; a GraphQL call ``Catalog: GraphQL query Listing (POST /graphql)``."""
    path = readable_path(str(call.path.source))
    if call.query:
        path += "?" + "&".join(f"{name}={readable_path(str(value.source))}" for name, value in call.query)
    if call.graphql is not None:
        return f"{service_label(call.service)}: GraphQL {graphql_operation(call.graphql)} ({call.method} {path})"
    return f"{service_label(call.service)}: {call.method} {path}"


_OPERATION = re.compile(r"\b(query|mutation|subscription)\b\s*([A-Za-z_]\w*)?")


def graphql_operation(request: GraphqlRequest) -> str:
    """``query Listing``, ``mutation AddItem``, ``query`` for an anonymous one (and the
    ``{ ... }`` shorthand): the operation the call runs, named as in its document."""
    operations = [(match.group(1), match.group(2)) for match in _OPERATION.finditer(request.query)]
    if request.operation_name is not None:
        kind = next((k for k, name in operations if name == request.operation_name), "query")
        return f"{kind} {request.operation_name}"
    if operations and request.query.lstrip().startswith(operations[0][0]):
        kind, name = operations[0]
        return f"{kind} {name}" if name else kind
    return "query"


def fallback_words(call: Call) -> str:
    if call.required:
        return "Fail request"
    value = call.fallback
    if value is None:
        return "Return null"
    if value == []:
        return "Return empty array"
    if value == {}:
        return "Return empty object"
    return "Return " + json.dumps(value, separators=(", ", ": "))


_LITERAL = re.compile(r"`(-?\d+(?:\.\d+)?|true|false|null)`")


def expression_words(source: str) -> str:
    """``{{ length(cart.items) > `0` }}`` reads ``length(cart.items) > 0``: the holes'
    braces and JMESPath's backticks around plain literals left out."""
    match = re.fullmatch(r"\s*\{\{(.*)\}\}\s*", source, re.S)
    text = match.group(1).strip() if match else source.strip()
    return _LITERAL.sub(r"\1", text)


def fan_out_words(call: Call) -> str:
    """``for each cart.items, ≤4 in parallel`` (contract section 10)."""
    if call.for_each is None:
        return ""
    words = f"for each {expression_words(str(call.for_each.source))}"
    if call.max_parallel is not None:
        words += f", ≤{call.max_parallel} in parallel"
    return words


def call_notes(call: Call) -> tuple[str, ...]:
    """What the call sequence says beside a call's ``Service Call``: its condition and
    its per-call cache. (Issue 14's per-call fields belong here too, e.g. stale_if_error_s.)"""
    notes: list[str] = []
    if call.when is not None:
        notes.append(f"when {expression_words(str(call.when.source))}")
    if call.cache is not None:
        notes.append(f"cached {call.cache.ttl_s}s")
    if call.stale_if_error_s is not None:
        notes.append(f"stale ≤ {call.stale_if_error_s}s on error")
    return tuple(notes)


def stage_order(endpoint: Endpoint, call: Call) -> str:
    """``1`` alone in its stage, ``2 (parallel)`` beside others; numbered 1.. in run order;
    a for_each call says so: ``2 (for each cart.items, ≤4 in parallel)``."""
    for number, stage in enumerate(endpoint.stages, start=1):
        if call in stage:
            shape = [word for word in ("parallel" if len(stage) > 1 else "", fan_out_words(call)) if word]
            return f"{number} ({'; '.join(shape)})" if shape else str(number)
    return "?"


def call_timeout_ms(plan: Plan, call: Call) -> int:
    return call.timeout_ms if call.timeout_ms is not None else plan.services[call.service].timeout_ms


def _auth_method(service: Service) -> str:
    auth = service.auth
    return {
        "none": "None",
        "bearer_forward": "Bearer token (the client's, forwarded)",
        "bearer": f"Bearer token (env {auth.token_env})",
        "api_key": f"API key ({auth.header} header)",
        "mtls": "mTLS",
    }.get(auth.type, auth.type)


def _client_auth(plan: Plan) -> str:
    auth = plan.layer.auth
    if auth.types:  # a list: the first whose credentials the request carries decides
        return " or ".join(_one_client_auth(plan, kind) for kind in auth.types)
    return _one_client_auth(plan, auth.type)


def _one_client_auth(plan: Plan, kind: str) -> str:
    auth = plan.layer.auth
    if kind == "oauth2_introspection" and auth.introspection is not None:
        # the URL and cache lifetime only: the client credentials stay env var names, unnamed here
        introspection = auth.introspection
        return (
            f"OAuth2 introspection ({introspection.url}; active answers cached ≤ {introspection.cache_s}s;"
            f" user claim {introspection.user_claim})"
        )
    if kind == "session":
        return "Session cookie (CSRF token on unsafe methods)"
    if kind == "jwt" and auth.jwt is not None:
        detail = ", ".join(auth.jwt.algorithms)
        if auth.jwt.issuer:
            detail += f", issued by {auth.jwt.issuer}"
        return f"JWT ({detail}; user claim {auth.jwt.user_claim})"
    if kind == "api_key":
        return f"API key ({auth.api_key_header} header)"
    return "None"


def _transport(value: str) -> str:
    return {"rest": "REST (JSON)", "graphql": "GraphQL", "grpc": "gRPC"}.get(value, value)


def _rate(rule: RateLimitRule) -> str:
    unit = "min" if rule.window_s == 60 else ("s" if rule.window_s == 1 else f"{rule.window_s:g}s")
    if rule.window_s == 3600:
        unit = "hour"
    return f"{rule.limit:,} req/{unit}"


# --- the sections ----------------------------------------------------------------------


def _overview(plan: Plan, date: str) -> Table:
    layer = plan.layer
    rows = (
        ("Layer Name", layer.name),
        ("Owner", layer.owner or "—"),
        ("Base URL", layer.base_path),
        ("Transport", _transport(layer.transport)),
        ("Authentication", _client_auth(plan)),
        ("Date", date),
        ("Configuration version", plan.version),
    )
    return Table(("Field", "Details"), rows)


def _registry(plan: Plan) -> Table:
    rows = tuple(
        (
            _service_title(s.name),
            s.base_url,
            _auth_method(s),
            _ms(s.avg_latency_ms),
            "—" if s.sla is None else f"{s.sla:g}%",
            s.owner or "—",
        )
        for s in plan.services.values()
    )
    return Table(("Service", "Base URL", "Auth Method", "Avg Latency", "SLA", "Owner"), rows)


def _parallelism(endpoint: Endpoint) -> str:
    parts: list[str] = []
    for number, stage in enumerate(endpoint.stages, start=1):
        ids = ", ".join(call.id for call in stage)
        after = "" if number == 1 else f" after stage {number - 1}"
        if len(stage) > 1:
            parts.append(f"stage {number}: {ids} in parallel{after}")
        else:
            parts.append(f"stage {number}: {ids}{after}")
    return "; ".join(parts).capitalize() if parts else "No calls"


def _cache_ttl(endpoint: Endpoint) -> str:
    per_call = ", ".join(f"{call.id} {call.cache.ttl_s}s" for call in endpoint.calls if call.cache is not None)
    suffix = f" (per-call cache: {per_call})" if per_call else ""
    if not endpoint.cache.enabled or endpoint.method != "GET":
        return "No cache" + suffix
    scope = "per user" if endpoint.cache.scope == "user" else "shared"
    cdn = ", CDN" if endpoint.cache.cdn else ""
    return f"{endpoint.cache.ttl_s}s ({scope}{cdn})" + suffix


_ON_VIOLATION = {"log": "log (count + log line)", "fail": "fail (502 CONTRACT_VIOLATION)"}


def _response_contract(endpoint: Endpoint) -> tuple[tuple[str, str], ...]:
    """The settings row of an endpoint with a ``response_schema`` (contract section 7); none without."""
    if endpoint.response_contract is None:
        return ()
    action = _ON_VIOLATION.get(endpoint.on_schema_violation, endpoint.on_schema_violation)
    return (("Response contract", f"JSON Schema, on violation: {action}"),)


def response_fields(endpoint: Endpoint) -> tuple[ResponseField, ...]:
    """Every leaf of the response template with the calls it reads (from the compiled reads)."""
    call_ids = [call.id for call in endpoint.calls]
    service_of = {call.id: call.service for call in endpoint.calls}
    found: list[ResponseField] = []

    def walk(source: Any, path: str) -> None:
        if isinstance(source, Mapping):
            for key, value in source.items():
                walk(value, f"{path}.{key}" if path else str(key))
            return
        if isinstance(source, list):
            for index, value in enumerate(source):
                walk(value, f"{path}[{index}]")
            return
        if not isinstance(source, str) or "{{" not in source:
            return
        references = compile_template(source, path).references
        calls = tuple(call_id for call_id in call_ids if call_id in references)
        services = tuple(dict.fromkeys(service_of[c] for c in calls))
        found.append(ResponseField(path or "(whole response)", source, calls, services))

    walk(endpoint.response.source, "")
    return tuple(found)


def _endpoint(plan: Plan, number: int, endpoint: Endpoint) -> EndpointSpec:
    title = f"{endpoint.method} {plan.layer.base_path.rstrip('/')}{endpoint.path}"
    settings = Table(
        ("Setting", "Value"),
        (
            ("Path", title),
            ("Purpose", endpoint.purpose or "—"),
            ("Downstream Calls", "; ".join(service_call(call) for stage in endpoint.stages for call in stage)),
            ("Parallel vs Sequential", _parallelism(endpoint)),
            ("Timeout (total)", _ms(endpoint.timeout_ms)),
            ("Cache TTL", _cache_ttl(endpoint)),
            *_response_contract(endpoint),
        ),
    )
    sequence = Table(
        ("Order", "Service Call", "Required?", "Timeout", "Fallback"),
        tuple(
            (
                stage_order(endpoint, call),
                "; ".join((service_call(call), *call_notes(call))),
                "Yes" if call.required else "No",
                _ms(call_timeout_ms(plan, call)),
                fallback_words(call),
            )
            for stage in endpoint.stages
            for call in stage
        ),
    )
    schema = json.dumps(endpoint.response.source, indent=2, ensure_ascii=False)
    return EndpointSpec(number, endpoint, title, settings, sequence, schema, response_fields(endpoint))


_ERROR_HANDLING = (
    ("All downstream calls succeed", "200", "Return assembled response"),
    (
        "Required service fails",
        "502",
        "Envelope DOWNSTREAM_FAILURE (CIRCUIT_OPEN when its breaker is open) naming failedServices",
    ),
    (
        "Optional service fails",
        "200",
        "Partial response: the call's fallback in place, partialData: true, failedServices",
    ),
    ("Required call timed out, or the total deadline passed", "504", "Envelope GATEWAY_TIMEOUT"),
    (
        "Authentication failure on downstream (401/403)",
        "401 / 403",
        "Propagate to client: DOWNSTREAM_UNAUTHORIZED / DOWNSTREAM_FORBIDDEN",
    ),
    ("Rate limited by downstream", "429", "Envelope RATE_LIMITED with Retry-After"),
    ("Other 4xx from a required call", "the same status", "Envelope DOWNSTREAM_CLIENT_ERROR"),
    ("Client not authenticated to the gateway", "401", "Envelope UNAUTHENTICATED"),
    ("Bad client input (invalid JSON, body too large)", "400 / 413", "Envelope BAD_REQUEST / PAYLOAD_TOO_LARGE"),
)


def _error_handling(plan: Plan) -> Table:
    """The template's scenarios, and those of contract section 7 that the plan uses."""
    rows = list(_ERROR_HANDLING)
    stale = [
        f"{call.id} ≤ {call.stale_if_error_s}s"
        for endpoint in plan.endpoints
        for call in endpoint.calls
        if call.stale_if_error_s is not None
    ]
    if stale:
        rows.insert(
            3,
            (
                f"Optional service fails, a recent good result on hand (stale_if_error_s: {', '.join(stale)})",
                "200",
                "The call's last good result for the same request stands in for the fallback; staleServices names it",
            ),
        )
    failing = [endpoint.name for endpoint in plan.endpoints if _fails_on_violation(endpoint)]
    if failing:
        rows.append(
            (
                f"Assembled response breaks the endpoint's response_schema ({', '.join(failing)})",
                "502",
                "Envelope CONTRACT_VIOLATION",
            )
        )
    return Table(("Scenario", "Response Code", "Behavior"), tuple(rows))


def _fails_on_violation(endpoint: Endpoint) -> bool:
    return endpoint.response_contract is not None and endpoint.on_schema_violation == "fail"


def _failure_threshold(service: Service) -> str:
    """``5 failures in 60s``, and the rate rule when set (contract section 7)."""
    breaker = service.breaker
    words = f"{breaker.failure_threshold} failures in {_seconds(breaker.window_s)}"
    if breaker.rate_based:
        words += f", or ≥{breaker.failure_rate:g}% of ≥{breaker.min_calls} calls in {_seconds(breaker.window_s)}"
    return words


def _breakers(plan: Plan) -> Table:
    rows = tuple(
        (
            _service_title(s.name),
            _failure_threshold(s),
            _seconds(s.breaker.open_s),
            f"{s.breaker.half_open_probes} request{'' if s.breaker.half_open_probes == 1 else 's'}",
        )
        for s in plan.services.values()
    )
    return Table(("Service", "Failure Threshold", "Open Duration", "Half-Open Probes"), rows)


def _backoff(policy: RetryPolicy) -> str:
    if policy.max_retries == 0 or policy.backoff == "none":
        return "None"
    jitter = " + jitter" if policy.jitter else ""
    if policy.backoff == "fixed":
        return f"Fixed: {policy.base_ms}ms{jitter}"
    delays = ", ".join(f"{policy.base_ms * 2**n}ms" for n in range(policy.max_retries))
    return f"Exponential: {delays}{jitter}"


_RETRY_ON_ORDER = ("5xx", "timeout", "connect_error", "429")


def _retry_on(policy: RetryPolicy) -> str:
    if policy.max_retries == 0 or not policy.retry_on:
        return "Never"
    kinds = [kind for kind in _RETRY_ON_ORDER if kind in policy.retry_on]
    return "5xx only" if kinds == ["5xx"] else ", ".join(kinds)


def _max_retries(service: Service) -> str:
    """``2``, with the retry budget and the hedge when set:
    ``2 (budget: 20% of calls, at least 3/s; hedged: a second attempt after 50ms unanswered)``."""
    policy = service.retry
    extras: list[str] = []
    if policy.budget_percent is not None:
        floor = f", at least {policy.budget_min_per_s:g}/s" if policy.budget_min_per_s else ""
        extras.append(f"budget: {policy.budget_percent:g}% of calls{floor}")
    if service.hedge is not None:
        extras.append(f"hedged: a second attempt after {service.hedge.after_ms}ms unanswered")
    return str(policy.max_retries) + (f" ({'; '.join(extras)})" if extras else "")


def _retries(plan: Plan) -> Table:
    rows = tuple(
        (_service_title(s.name), _max_retries(s), _backoff(s.retry), _retry_on(s.retry)) for s in plan.services.values()
    )
    return Table(("Service", "Max Retries", "Backoff", "Retry On"), rows)


def _resilience_checklist(plan: Plan) -> tuple[tuple[bool, str], ...]:
    services = list(plan.services.values())
    optional = [call for endpoint in plan.endpoints for call in endpoint.calls if not call.required]
    bulkheads = ", ".join(f"{s.name} {s.bulkhead.max_concurrent}" for s in services)
    deadlines = ", ".join(f"{s.name} {s.deadline_header}" for s in services if s.deadline_header)
    extra = ((True, f"Deadline propagated to downstream calls (the ms left, in headers: {deadlines})"),)
    return (
        (bool(services), "Circuit breakers configured for each downstream service"),
        (bool(services), "Retry policies defined per service (not global)"),
        (
            bool(services),
            "Bulkhead isolation prevents one slow service from consuming all connection pool threads"
            f" (max concurrent calls: {bulkheads})",
        ),
        (True, f"Fallback responses defined for non-critical services ({len(optional)} optional calls)"),
        (True, "Health check endpoint exposes downstream service status (/health/downstream)"),
    ) + (extra if deadlines else ())


_SCOPES = {
    "user": ("Per-user", "User ID from {claim}"),
    "ip": ("Per-IP", "Client IP"),
    "endpoint": ("Per-endpoint", "Path + User"),
    "global": ("Global", "Entire gateway"),
}


def _user_source(plan: Plan, kind: str) -> str:
    """Where a per-user limit's user comes from, for one client auth type (contract section 8)."""
    auth = plan.layer.auth
    if kind == "jwt":
        return f"JWT ({auth.jwt.user_claim if auth.jwt is not None else 'the API key'})"
    if kind == "oauth2_introspection" and auth.introspection is not None:
        return f"OAuth2 introspection ({auth.introspection.user_claim})"
    if kind == "session":
        return "the session's Django user"
    return "the API key"


def _rate_limits(plan: Plan) -> Table:
    source = " or ".join(dict.fromkeys(_user_source(plan, kind) for kind in plan.layer.auth.kinds))

    def row(rule: RateLimitRule, where: str) -> tuple[str, ...]:
        kind, scope = _SCOPES[rule.scope]
        scope = scope.format(claim=source)
        response = "503" if rule.scope == "global" else "429 + Retry-After"
        return (kind + where, _rate(rule), scope, response)

    rows = [row(rule, "") for rule in plan.layer.rate_limits]
    for endpoint in plan.endpoints:
        rows.extend(row(rule, f" ({endpoint.name})") for rule in endpoint.rate_limits)
    return Table(("Limit Type", "Value", "Scope", "Response"), tuple(rows) or (("None", "—", "—", "—"),))


def _caching(plan: Plan) -> Table:
    rows: list[tuple[str, ...]] = []
    uncached: list[str] = []
    base = plan.layer.base_path.rstrip("/")
    for endpoint in plan.endpoints:
        policy = endpoint.cache
        if endpoint.method != "GET" or not policy.enabled:
            uncached.append(f"{endpoint.method} {base}{endpoint.path}")
            continue
        events = "; ".join(
            f"event {rule.event} → tags {', '.join(str(tag.source) for tag in rule.tags)}"
            for rule in policy.invalidate_on
        )
        tags = ", ".join(str(tag.source) for tag in policy.tags)
        invalidation = events or "TTL only"
        if tags:
            invalidation += f" (entry tags: {tags})"
        layer = "Gateway response cache, Redis-shared (" + ("per user" if policy.scope == "user" else "shared") + ")"
        if policy.cdn:  # contract section 8: the template's "Redis / CDN"
            layer = (
                "Redis + CDN: gateway response cache, Redis-shared (shared); CDN (s-maxage, Surrogate-Key;"
                " purged via GATEWAY_CDN_PURGE_URL)"
            )
        rows.append((f"GET {base}{endpoint.path}", layer, f"{policy.ttl_s}s", invalidation))
    if uncached:
        rows.append((", ".join(uncached), "No cache", "N/A", "N/A"))
    rows.extend(_call_caching(plan))
    return Table(("Endpoint", "Cache Layer", "TTL", "Invalidation"), tuple(rows))


def _call_caching(plan: Plan) -> list[tuple[str, ...]]:
    """Per-call caches and in-flight dedupe (contract section 10), after the endpoints' rows."""
    rows: list[tuple[str, ...]] = []
    base = plan.layer.base_path.rstrip("/")
    for endpoint in plan.endpoints:
        for call in endpoint.calls:
            if call.cache is None:
                continue
            where = f"{endpoint.method} {base}{endpoint.path}, call {call.id} ({service_call(call)})"
            per = "per user" if plan.services[call.service].auth.type == "bearer_forward" else "shared"
            layer = f"Per-call cache of the downstream answer, Redis-shared ({per}, keyed by the rendered request)"
            tags = ", ".join(str(tag.source) for tag in call.cache.tags)
            rows.append((where, layer, f"{call.cache.ttl_s}s", f"TTL (tags: {tags})" if tags else "TTL only"))
    for service in plan.services.values():
        if service.dedupe:
            layer = "In-flight dedupe: identical GET/idempotent requests in flight at once are sent once per process"
            rows.append((f"{_service_title(service.name)} calls", layer, "N/A (in flight only)", "N/A"))
    return rows


_MONITORING = (
    (True, "Request duration tracked per orchestrated endpoint (P50, P95, P99): gateway_request_duration_seconds"),
    (True, "Downstream call duration tracked per service (separate from total): gateway_downstream_duration_seconds"),
    (True, "Error rate dashboards per downstream service (deploy/grafana/gateway-dashboard.json)"),
    (True, "Circuit breaker state changes trigger alerts (GatewayCircuitBreakerOpen)"),
    (True, "Distributed tracing (trace ID propagated to all downstream calls: W3C traceparent)"),
    (True, "Log correlation: single request ID in gateway logs and all downstream logs (X-Request-ID)"),
)

_ALERTS = Table(
    ("Metric", "Alert Threshold", "Channel"),
    (
        (
            "Total endpoint latency P99",
            "> its target, gateway_endpoint_latency_target_seconds (GatewayEndpointLatencyP99High)",
            "Slack",
        ),
        ("Downstream error rate", "> 5% over 5 min (GatewayDownstreamErrorRateHigh)", "PagerDuty"),
        ("Circuit breaker open", "Any service (GatewayCircuitBreakerOpen)", "Slack"),
    ),
)


def _alerts(plan: Plan) -> Table:
    """The alerts table; with a ``p99_target_ms`` on any endpoint, the P99 row per endpoint
    with its threshold (the set target, or the default share of its timeout)."""
    if all(endpoint.p99_target_ms is None for endpoint in plan.endpoints):
        return _ALERTS
    p99_rows = tuple(
        (
            f"Total endpoint latency P99 ({endpoint.name})",
            f"> {_p99_target(endpoint)} (GatewayEndpointLatencyP99High)",
            "Slack",
        )
        for endpoint in plan.endpoints
    )
    return Table(_ALERTS.headers, p99_rows + _ALERTS.rows[1:])


def _p99_target(endpoint: Endpoint) -> str:
    if endpoint.p99_target_ms is not None:
        return f"{endpoint.p99_target_ms}ms (p99_target_ms)"
    return f"{endpoint.p99_target_s * 1000:g}ms ({P99_TARGET_SHARE:.0%} of its {endpoint.timeout_ms}ms timeout)"


def spec_build(plan: Plan, *, date: str, endpoint: str | None = None) -> Spec:
    """The whole specification, or one endpoint's (``endpoint`` is its name; KeyError if unknown)."""
    endpoints = list(enumerate(plan.endpoints, start=1))
    if endpoint is not None:
        endpoints = [(n, e) for n, e in endpoints if e.name == endpoint]
        if not endpoints:
            raise KeyError(endpoint)
    return Spec(
        layer_name=plan.layer.name,
        version=plan.version,
        overview=_overview(plan, date),
        registry=_registry(plan),
        endpoints=tuple(_endpoint(plan, n, e) for n, e in endpoints),
        error_handling=_error_handling(plan),
        breakers=_breakers(plan),
        retries=_retries(plan),
        resilience_checklist=_resilience_checklist(plan),
        rate_limits=_rate_limits(plan),
        caching=_caching(plan),
        monitoring_checklist=_MONITORING,
        alerts=_alerts(plan),
    )


# --- Markdown ----------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table_markdown(table: Table) -> list[str]:
    lines = ["| " + " | ".join(table.headers) + " |", "|" + "---|" * len(table.headers)]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows)
    return lines


def _checklist(items: Iterable[tuple[bool, str]]) -> list[str]:
    return [f"- {'☑' if done else '☐'} {text}" for done, text in items]


def spec_markdown(spec: Spec) -> str:
    out: list[str] = [f"# {spec.layer_name}: orchestration specification", ""]
    out += ["## Orchestration Layer Overview", "", *table_markdown(spec.overview), ""]
    out += ["## Downstream Service Registry", "", *table_markdown(spec.registry), ""]
    out += ["## Orchestrated Endpoints", ""]
    for endpoint in spec.endpoints:
        out += [f"### Endpoint {endpoint.number}: {endpoint.endpoint.name}", ""]
        out += [*table_markdown(endpoint.settings), ""]
        out += [f"Call sequence (total timeout: {endpoint.endpoint.timeout_ms}ms).", ""]
        out += [*table_markdown(endpoint.call_sequence), ""]
        out += ["Response schema.", "", "```json", endpoint.response_schema, "```", ""]
        rows = tuple(
            (
                f"`{f.path}`",
                ", ".join(f.calls) or "the request only",
                ", ".join(service_label(s) for s in f.services) or "—",
            )
            for f in endpoint.fields
        )
        out += ["Response fields and their sources.", ""]
        out += [*table_markdown(Table(("Field", "Calls", "Services"), rows)), ""]
    out += ["## Error Handling Strategy", "", *table_markdown(spec.error_handling), ""]
    out += ["## Resilience Patterns", ""]
    out += ["### Circuit Breaker Configuration", "", *table_markdown(spec.breakers), ""]
    out += ["### Retry Policy", "", *table_markdown(spec.retries), ""]
    out += [*_checklist(spec.resilience_checklist), ""]
    out += ["## Rate Limiting", "", *table_markdown(spec.rate_limits), ""]
    out += ["## Caching Strategy", "", *table_markdown(spec.caching), ""]
    out += ["## Monitoring and Observability", "", *_checklist(spec.monitoring_checklist), ""]
    out += [*table_markdown(spec.alerts), ""]
    return "\n".join(out)
