"""Endpoints with their call sequence inline, checked like ``gateway check`` does."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote

from registry import models
from registry.admin.endpoint_spec import endpoint_spec_get
from registry.admin.problems import add_problems
from registry.admin.template_field import TemplateTextField
from registry.admin.versioning import ConfigVersionBumpMixin
from registry.documents import call_document
from registry.fragments import ENDPOINT_LOCATION, endpoint_problems

_ENDPOINT_FIELDS = (
    {key: key for key in ("name", "method", "path", "purpose", "timeout_ms", "response")}
    | {"cache.ttl_s": "cache_ttl_s", "cache.scope": "cache_scope", "cache.tags": "cache_tags"}
    | {"cache.invalidate_on": "invalidate_on"}
    | {"response_schema": "response_schema", "on_schema_violation": "on_schema_violation"}
    | {"p99_target_ms": "p99_target_ms", "cache.cdn": "cache_cdn"}
)
_CALL_FIELDS = (
    {"id": "call_id"}
    | {key: key for key in ("service", "stage", "method", "path", "query", "headers", "body", "required", "timeout_ms")}
    | {"idempotent": "idempotent", "fallback": "fallback"}
    | {key: key for key in ("when", "for_each", "max_parallel")}
    | {"cache.ttl_s": "cache_ttl_s", "cache.tags": "cache_tags", "cache": "cache_ttl_s"}
    | {"stale_if_error_s": "stale_if_error_s"}
    | {"graphql.query": "graphql_query", "graphql.variables": "graphql_variables", "graphql": "graphql_query"}
    | {"graphql.operation_name": "graphql_operation_name"}
)
_GRAPHQL_TEXT = ("graphql_query", "graphql_variables")
# The call editor is stacked, a few short fields a line: it fits a 1400 px screen (the tabular
# grid of every field was ~2,800 px wide) and the check's problems show beside their field.
_JSON = {"rows": 2, "cols": 40, "class": "gateway-json", "style": "font-family: monospace"}
_LINE = {"rows": 1, "cols": 60, "class": "gateway-line", "style": "font-family: monospace"}


class EndpointForm(forms.ModelForm[models.Endpoint]):
    response = TemplateTextField(source="response", help_text="JSON or YAML; {{ expr }} holes are JMESPath.")

    class Meta:
        model = models.Endpoint
        exclude = ["position"]

    def clean_cache_tags(self) -> list[Any]:
        return self.cleaned_data.get("cache_tags") or []

    def clean_invalidate_on(self) -> list[Any]:
        return self.cleaned_data.get("invalidate_on") or []

    def _post_clean(self) -> None:
        """After the instance is built from the form: check it like `gateway check`."""
        super()._post_clean()  # type: ignore[misc]
        for problem in add_problems(self, endpoint_problems(self.instance), ENDPOINT_LOCATION, _ENDPOINT_FIELDS):
            self.add_error(None, str(problem))


class CallForm(forms.ModelForm[models.Call]):
    class Meta:
        model = models.Call
        exclude = ["position"]
        widgets = {
            key: forms.Textarea(attrs=_JSON)
            for key in ("query", "headers", "body", "fallback", "cache_tags", *_GRAPHQL_TEXT)
        }
        widgets |= {key: forms.Textarea(attrs=_LINE) for key in ("path", "when", "for_each")}

    def clean_cache_tags(self) -> list[Any]:
        return self.cleaned_data.get("cache_tags") or []

    def clean_query(self) -> dict[str, Any]:
        return self.cleaned_data.get("query") or {}

    def clean_headers(self) -> dict[str, Any]:
        return self.cleaned_data.get("headers") or {}

    def clean_graphql_variables(self) -> dict[str, Any]:
        return self.cleaned_data.get("graphql_variables") or {}


class CallFormSet(forms.BaseInlineFormSet[models.Call, models.Endpoint, "forms.ModelForm[models.Call]"]):
    """Checks the whole endpoint with its calls: references, stages, timeouts, services."""

    def clean(self) -> None:
        super().clean()
        kept = [form for form in self.forms if self._is_kept(form)]
        calls = [call_document(form.instance, form.cleaned_data["service"].name) for form in kept]
        own = set(endpoint_problems(self.instance))
        problems = [p for p in endpoint_problems(self.instance, calls) if p not in own]
        unplaced = []
        for problem in problems:
            index = next(
                (i for i in range(len(kept)) if problem.location.startswith(f"{ENDPOINT_LOCATION}.calls[{i}]")), None
            )
            if index is None:
                unplaced.append(problem)
            else:
                prefix = f"{ENDPOINT_LOCATION}.calls[{index}]"
                unplaced += add_problems(kept[index], [problem], prefix, _CALL_FIELDS)
        if unplaced:
            raise forms.ValidationError([str(problem) for problem in unplaced])

    def _is_kept(self, form: forms.ModelForm[models.Call]) -> bool:
        data = getattr(form, "cleaned_data", None)
        if not data or not data.get("service") or not data.get("call_id"):
            return False
        return not (self.can_delete and self._should_delete_form(form))  # type: ignore[attr-defined]


class CallInline(admin.StackedInline[models.Call, models.Endpoint]):
    model = models.Call
    form = CallForm
    formset = CallFormSet
    fieldsets = [  # a few short fields a line (see _JSON)
        (
            None,
            {
                "fields": [
                    ("call_id", "service", "stage"),
                    ("method", "path"),
                    ("required", "timeout_ms", "fallback", "stale_if_error_s"),
                ]
            },
        ),
        ("Request", {"fields": [("query", "headers"), ("has_body", "body"), "idempotent"], "classes": ["collapse"]}),
        (
            "GraphQL",
            {"fields": [("graphql_query", "graphql_variables"), "graphql_operation_name"], "classes": ["collapse"]},
        ),
        (
            "Composition and cache",
            {"fields": [("when", "for_each", "max_parallel"), ("cache_ttl_s", "cache_tags")], "classes": ["collapse"]},
        ),
    ]
    extra = 0
    ordering = ["stage", "position", "id"]
    autocomplete_fields = ["service"]


class EndpointRateLimitInline(admin.TabularInline[models.RateLimitRule, models.Endpoint]):
    model = models.RateLimitRule
    fk_name = "endpoint"
    exclude = ["layer", "position"]
    extra = 0


@admin.register(models.Endpoint)
class EndpointAdmin(ConfigVersionBumpMixin, admin.ModelAdmin[models.Endpoint]):
    form = EndpointForm
    inlines = [CallInline, EndpointRateLimitInline]
    list_display = ["name", "method", "path", "purpose", "timeout_ms", "call_count", "cache_summary"]
    list_filter = ["method", "cache_scope"]
    search_fields = ["name", "path", "purpose", "calls__service__name"]
    fieldsets = [
        (None, {"fields": ["name", "method", "path", "purpose", "timeout_ms", "p99_target_ms"]}),
        ("Response", {"fields": ["response"]}),
        ("Response contract (optional)", {"fields": ["response_schema", "on_schema_violation"]}),
        ("Cache", {"fields": ["cache_ttl_s", "cache_scope", "cache_cdn", "cache_tags", "invalidate_on"]}),
    ]

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).prefetch_related("calls")

    def change_view(
        self, request: Any, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> Any:
        """Above the editor: the saved endpoint as the template's call sequence and response fields."""
        endpoint = self.get_object(request, unquote(object_id))  # None for an unknown or malformed id
        spec = endpoint_spec_get(name=endpoint.name) if endpoint is not None else None
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "endpoint_spec": spec})

    @admin.display(description="Calls")
    def call_count(self, endpoint: models.Endpoint) -> int:
        return len(endpoint.calls.all())

    @admin.display(description="Cache: TTL, tags, purged by")
    def cache_summary(self, endpoint: models.Endpoint) -> str:
        """What on-call needs when a stale answer is reported: the tags and the events that purge them."""
        if not endpoint.cache_ttl_s:
            return "not cached"
        tags = ", ".join(str(tag) for tag in endpoint.cache_tags or []) or "no tags"
        events = "; ".join(
            f"{rule.get('event')} → {', '.join(str(tag) for tag in rule.get('tags') or [])}"
            for rule in endpoint.invalidate_on or []
            if isinstance(rule, dict)
        )
        return f"{endpoint.cache_ttl_s} s {endpoint.cache_scope} · tags {tags} · purged by {events or 'TTL only'}"
