"""The orchestration layer as data: the source of truth the admin edits.

Everything here mirrors ``gateway.yaml`` (contract section 1). Secrets are never
stored: only the names of env vars and paths of files that hold them. Templates
are JSON kept as text (see ``registry.fields``) and compiled by
``registry.compiler``, never per request.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from registry.choices import (
    Backoff,
    CacheScope,
    CallMethod,
    ClientAuthType,
    DownstreamAuthType,
    EndpointMethod,
    RateLimitScope,
    SchemaViolationAction,
    Transport,
)
from registry.fields import JsonTextField


def _default_algorithms() -> list[str]:
    return ["HS256"]


def _default_retry_on() -> list[str]:
    return ["5xx", "timeout"]


def _empty_list() -> list[object]:
    return []


def _empty_object() -> dict[str, object]:
    return {}


class Layer(models.Model):
    """The orchestration layer overview; one row (the first is the one served)."""

    name = models.CharField(max_length=200)
    owner = models.CharField(max_length=200, blank=True)
    base_path = models.CharField(max_length=200, default="/")
    transport = models.CharField(max_length=20, choices=Transport.choices, default=Transport.REST)
    auth_type = models.CharField(max_length=20, choices=ClientAuthType.choices, default=ClientAuthType.NONE)
    api_key_header = models.CharField(max_length=100, default="X-API-Key")
    jwt_algorithms = models.JSONField(default=_default_algorithms, blank=True)
    jwt_secret_env = models.CharField("JWT secret env var", max_length=100, blank=True)
    jwt_public_key_file = models.CharField("JWT public key file", max_length=500, blank=True)
    jwt_jwks_url = models.CharField("JWKS URL", max_length=500, blank=True)
    jwt_issuer = models.CharField("JWT issuer", max_length=500, blank=True)
    jwt_audience = models.CharField("JWT audience", max_length=500, blank=True)
    jwt_user_claim = models.CharField("JWT user claim", max_length=100, default="sub")
    jwt_leeway_s = models.PositiveIntegerField("JWT leeway (s)", default=0)
    auth_types = models.JSONField(
        "client auth types (a list)",
        default=_empty_list,
        blank=True,
        help_text='e.g. ["session", "jwt"]: the first type whose credentials a request carries decides. '
        "When set, it replaces the auth type above (which becomes its first entry).",
    )
    introspection_url = models.CharField("introspection URL", max_length=500, blank=True)
    introspection_client_id_env = models.CharField("introspection client id env var", max_length=100, blank=True)
    introspection_client_secret_env = models.CharField(
        "introspection client secret env var", max_length=100, blank=True
    )
    introspection_cache_s = models.PositiveIntegerField(
        "introspection cache (s)", default=60, validators=[MaxValueValidator(86400)]
    )
    introspection_user_claim = models.CharField("introspection user claim", max_length=100, default="sub")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(base_path__startswith="/"), name="layer_base_path_absolute"),
            models.CheckConstraint(condition=Q(auth_type__in=ClientAuthType.values), name="layer_auth_type_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class Service(models.Model):
    """A downstream service of the registry, with its resilience policies."""

    name = models.SlugField(max_length=100, unique=True)
    base_url = models.CharField("base URL", max_length=500)  # internal hosts (http://cart:8080) fail URLField
    owner = models.CharField(max_length=200, blank=True)
    avg_latency_ms = models.PositiveIntegerField("declared latency (ms)", null=True, blank=True)
    sla = models.FloatField("SLA (%)", null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(100)])
    timeout_ms = models.PositiveIntegerField(default=1000, validators=[MinValueValidator(1)])
    auth_type = models.CharField(max_length=20, choices=DownstreamAuthType.choices, default=DownstreamAuthType.NONE)
    auth_token_env = models.CharField("token env var", max_length=100, blank=True)
    auth_header = models.CharField("API key header", max_length=100, blank=True)
    auth_key_env = models.CharField("API key env var", max_length=100, blank=True)
    auth_cert_file = models.CharField("client cert file", max_length=500, blank=True)
    auth_key_file = models.CharField("client key file", max_length=500, blank=True)
    auth_ca_file = models.CharField("CA file", max_length=500, blank=True)
    breaker_failure_threshold = models.PositiveIntegerField(default=5, validators=[MinValueValidator(1)])
    breaker_window_s = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1)])
    breaker_open_s = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1)])
    breaker_half_open_probes = models.PositiveIntegerField(default=3, validators=[MinValueValidator(1)])
    retry_max_retries = models.PositiveIntegerField(default=0)
    retry_backoff = models.CharField(max_length=20, choices=Backoff.choices, default=Backoff.EXPONENTIAL)
    retry_base_ms = models.PositiveIntegerField(default=100)
    retry_jitter = models.BooleanField(default=False)
    retry_on = models.JSONField(default=_default_retry_on, blank=True)
    bulkhead_max_concurrent = models.PositiveIntegerField(default=100, validators=[MinValueValidator(1)])
    bulkhead_max_wait_ms = models.PositiveIntegerField(default=0)
    breaker_min_calls = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Empty: no rate rule."
    )
    breaker_failure_rate = models.FloatField(
        "breaker failure rate (%)", null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    retry_budget_percent = models.FloatField(
        "retry budget (%)",
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Empty: no retry budget.",
    )
    retry_budget_min_per_s = models.FloatField(
        "retry budget minimum (/s)", null=True, blank=True, validators=[MinValueValidator(0)]
    )
    deadline_header = models.CharField(
        max_length=100, blank=True, help_text="Each attempt sends the whole milliseconds it has left in this header."
    )
    dedupe = models.BooleanField(
        default=False, help_text="Identical GET/idempotent requests in flight at once in one process are sent once."
    )
    hedge_after_ms = models.PositiveIntegerField(
        "hedge after (ms)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="GET/idempotent calls: a second attempt when the first has not answered by then. Empty: no hedging.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(timeout_ms__gte=1), name="service_timeout_positive"),
            models.CheckConstraint(
                condition=Q(auth_type__in=DownstreamAuthType.values), name="service_auth_type_valid"
            ),
            models.CheckConstraint(condition=Q(retry_backoff__in=Backoff.values), name="service_backoff_valid"),
            models.CheckConstraint(condition=Q(breaker_failure_threshold__gte=1), name="service_breaker_threshold"),
            models.CheckConstraint(condition=Q(bulkhead_max_concurrent__gte=1), name="service_bulkhead_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class Endpoint(models.Model):
    """An aggregate endpoint: a method and path below the layer's base path."""

    name = models.SlugField(max_length=100, unique=True)
    method = models.CharField(max_length=10, choices=EndpointMethod.choices, default=EndpointMethod.GET)
    path = models.CharField(max_length=500, help_text="Below the layer's base path; may hold {param} segments.")
    purpose = models.CharField(max_length=500, blank=True)
    timeout_ms = models.PositiveIntegerField(default=3000, validators=[MinValueValidator(1)])
    response = JsonTextField(help_text="The response template (JSON or YAML).")
    cache_ttl_s = models.PositiveIntegerField("cache TTL (s)", default=0)
    cache_scope = models.CharField(max_length=10, choices=CacheScope.choices, default=CacheScope.USER)
    cache_tags = models.JSONField(default=_empty_list, blank=True)
    invalidate_on = models.JSONField(default=_empty_list, blank=True, help_text='[{"event": ..., "tags": [...]}]')
    position = models.PositiveIntegerField(default=0, help_text="Order in the exported file.")
    response_schema = models.JSONField(
        null=True, blank=True, help_text="JSON Schema of the assembled response. Empty: no contract check."
    )
    on_schema_violation = models.CharField(
        max_length=4,
        choices=SchemaViolationAction.choices,
        blank=True,
        default="",
        help_text="Empty: log.",
    )
    # Issue 15b: the P99 alert's threshold, and the CDN layer of the response cache.
    p99_target_ms = models.PositiveIntegerField(
        "P99 target (ms)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="The P99 latency alert's threshold. Empty: 80 % of the endpoint's timeout.",
    )
    cache_cdn = models.BooleanField(
        "CDN",
        default=False,
        help_text="Shared entries: Cache-Control public + s-maxage, Surrogate-Key/Cache-Tag headers; "
        "invalidations also purge GATEWAY_CDN_PURGE_URL.",
    )

    class Meta:
        ordering = ["position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["method", "path"], name="endpoint_method_path_unique"),
            models.CheckConstraint(condition=Q(path__startswith="/"), name="endpoint_path_absolute"),
            models.CheckConstraint(condition=Q(method__in=EndpointMethod.values), name="endpoint_method_valid"),
            models.CheckConstraint(condition=Q(timeout_ms__gte=1), name="endpoint_timeout_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


class Call(models.Model):
    """One downstream call of an endpoint; calls of one stage run in parallel."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="calls")
    call_id = models.CharField("id", max_length=100, help_text="Names the result in templates.")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="calls")
    stage = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    method = models.CharField(max_length=10, choices=CallMethod.choices, default=CallMethod.GET)
    path = models.CharField(max_length=1000)
    query = JsonTextField(default=_empty_object, blank=True)
    headers = JsonTextField(default=_empty_object, blank=True)
    # ``body: null`` (send JSON null) differs from no body at all.
    has_body = models.BooleanField(default=False)
    body = JsonTextField(null=True, blank=True)
    required = models.BooleanField(default=True)
    timeout_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: the service's timeout.")
    idempotent = models.BooleanField(default=False)
    fallback = JsonTextField(null=True, blank=True)
    stale_if_error_s = models.PositiveIntegerField(
        "stale if error (s)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Optional calls: the last good result (this old at most) stands in for the fallback.",
    )
    position = models.PositiveIntegerField(default=0)
    # Composition (contract section 10): empty text / null means the field is absent.
    when = models.CharField(max_length=1000, blank=True, help_text="{{ expr }}: not truthy, the call is skipped.")
    for_each = models.CharField(max_length=1000, blank=True, help_text="{{ expr }}: one request per element.")
    max_parallel = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    cache_ttl_s = models.PositiveIntegerField("cache TTL (s)", null=True, blank=True, validators=[MinValueValidator(1)])
    cache_tags = models.JSONField(default=_empty_list, blank=True)
    # GraphQL (contract section 8): an empty query means the call is not a GraphQL call.
    graphql_query = models.TextField(
        "GraphQL query", blank=True, help_text="POSTs {query, variables}; the result is the answer's data."
    )
    graphql_variables = JsonTextField("GraphQL variables", default=_empty_object, blank=True)
    graphql_operation_name = models.CharField("GraphQL operation name", max_length=200, blank=True)

    class Meta:
        ordering = ["stage", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "call_id"], name="call_id_unique_in_endpoint"),
            models.CheckConstraint(condition=Q(stage__gte=1), name="call_stage_positive"),
            models.CheckConstraint(
                condition=~Q(call_id__in=["request", "user", "event", "item", "index"]), name="call_id_not_reserved"
            ),
            models.CheckConstraint(condition=Q(method__in=CallMethod.values), name="call_method_valid"),
        ]

    def __str__(self) -> str:
        return self.call_id


class RateLimitRule(models.Model):
    """A rate limit of the whole layer, or of one endpoint on top of the layer's."""

    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, null=True, blank=True, related_name="rate_limits")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, null=True, blank=True, related_name="rate_limits")
    scope = models.CharField(max_length=10, choices=RateLimitScope.choices)
    limit = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    window_s = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(layer__isnull=False) & Q(endpoint__isnull=True))
                | (Q(layer__isnull=True) & Q(endpoint__isnull=False)),
                name="rate_limit_layer_xor_endpoint",
            ),
            models.CheckConstraint(condition=Q(limit__gte=1) & Q(window_s__gte=1), name="rate_limit_positive"),
            models.CheckConstraint(condition=Q(scope__in=RateLimitScope.values), name="rate_limit_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.scope}: {self.limit}/{self.window_s}s"


class ApiKey(models.Model):
    """A client API key (layer auth ``api_key``); only its SHA-256 is kept."""

    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=20, editable=False, help_text="The first characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    subject = models.CharField(max_length=200, help_text="The user id requests with this key act as.")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ConfigVersion(models.Model):
    """One row, bumped on every change, so running workers know to recompile."""

    counter = models.PositiveBigIntegerField(default=0)
    token = models.CharField(max_length=32, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="config_version_single_row")]
        permissions = [("rollback_configversion", "Can roll the configuration back to an earlier version")]

    @property
    def value(self) -> str:
        return f"{self.counter}-{self.token}"


class VersionSource(models.TextChoices):
    IMPORT = "import", "import"
    ADMIN = "admin", "admin"
    API = "api", "API"
    ROLLBACK = "rollback", "rollback"


class ConfigRevision(models.Model):
    """One immutable version of the configuration (contract section 5): written in the
    same transaction as the change it records, numbered by ``ConfigVersion.counter``
    (whose row lock serialises changes), never updated or deleted."""

    number = models.PositiveBigIntegerField(unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    who = models.CharField(max_length=150, help_text="The username, or 'import'; kept when the account goes.")
    source = models.CharField(max_length=10, choices=VersionSource.choices)
    comment = models.TextField(blank=True)
    summary = models.CharField(max_length=500)
    # Text, not jsonb: PostgreSQL's jsonb reorders keys, and a response template's key order
    # is part of the configuration a rollback must restore exactly.
    document = JsonTextField(help_text="The whole configuration after this change.")

    class Meta:
        ordering = ["-number"]
        verbose_name = "configuration version"
        constraints = [
            models.CheckConstraint(condition=Q(source__in=VersionSource.values), name="revision_source_valid")
        ]

    def __str__(self) -> str:
        return f"version {self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableVersion(f"version {self.number} is immutable")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ImmutableVersion(f"version {self.number} is immutable")


class ImmutableVersion(Exception):
    """A recorded version was about to be changed or deleted."""
