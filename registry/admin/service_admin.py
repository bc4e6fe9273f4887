"""Downstream services: owner, URL, SLA, latency and policies at a glance."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from registry import models
from registry.admin.problems import add_problems
from registry.admin.versioning import ConfigVersionBumpMixin
from registry.choices import RetryOn
from registry.fragments import service_problems

_AUTH_KEYS = ("token_env", "header", "key_env", "cert_file", "key_file", "ca_file")
# Location below ``services.<name>`` -> form field.
_FIELDS = {
    "": "name",
    "base_url": "base_url",
    "owner": "owner",
    "avg_latency_ms": "avg_latency_ms",
    "sla": "sla",
    "timeout_ms": "timeout_ms",
    "auth": "auth_type",
    **{f"auth.{key}": f"auth_{key}" for key in _AUTH_KEYS},
    **{f"breaker.{key}": f"breaker_{key}" for key in ("failure_threshold", "window_s", "open_s", "half_open_probes")},
    **{f"retry.{key}": f"retry_{key}" for key in ("max_retries", "backoff", "base_ms", "jitter")},
    "retry.retry_on": "retry_on",
    **{f"bulkhead.{key}": f"bulkhead_{key}" for key in ("max_concurrent", "max_wait_ms")},
    "breaker.min_calls": "breaker_min_calls",
    "breaker.failure_rate": "breaker_failure_rate",
    "retry.budget_percent": "retry_budget_percent",
    "retry.budget_min_per_s": "retry_budget_min_per_s",
    "deadline_header": "deadline_header",
    "dedupe": "dedupe",
    "hedge.after_ms": "hedge_after_ms",
}


class ServiceForm(forms.ModelForm[models.Service]):
    retry_on = forms.MultipleChoiceField(
        choices=RetryOn.choices, widget=forms.CheckboxSelectMultiple, required=False, label="Retry on"
    )

    class Meta:
        model = models.Service
        fields = "__all__"

    def clean_retry_on(self) -> list[str]:
        chosen = set(self.cleaned_data.get("retry_on") or [])
        return [value for value in RetryOn.values if value in chosen]

    def _post_clean(self) -> None:
        """After the instance is built from the form: check it like `gateway check`."""
        super()._post_clean()  # type: ignore[misc]
        if "name" in self.cleaned_data:
            rest = add_problems(self, service_problems(self.instance), f"services.{self.instance.name}", _FIELDS)
            for problem in rest:
                self.add_error(None, str(problem))


@admin.register(models.Service)
class ServiceAdmin(ConfigVersionBumpMixin, admin.ModelAdmin[models.Service]):
    form = ServiceForm
    list_display = ["name", "owner", "base_url", "sla", "avg_latency_ms", "timeout_ms", "auth_type", "breaker", "retry"]
    list_filter = ["owner", "auth_type", "retry_backoff"]
    search_fields = ["name", "owner", "base_url"]
    fieldsets = [
        (None, {"fields": ["name", "base_url", "owner", "avg_latency_ms", "sla", "timeout_ms"]}),
        (
            "Authentication (references only: env var names and file paths)",
            {"fields": ["auth_type", *(f"auth_{key}" for key in _AUTH_KEYS)]},
        ),
        (
            "Circuit breaker",
            {"fields": ["breaker_failure_threshold", "breaker_window_s", "breaker_open_s", "breaker_half_open_probes"]},
        ),
        ("Retry", {"fields": ["retry_max_retries", "retry_backoff", "retry_base_ms", "retry_jitter", "retry_on"]}),
        ("Bulkhead", {"fields": ["bulkhead_max_concurrent", "bulkhead_max_wait_ms"]}),
        (
            "Resilience beyond the basics (optional)",
            {
                "fields": [
                    "deadline_header",
                    "breaker_min_calls",
                    "breaker_failure_rate",
                    "retry_budget_percent",
                    "retry_budget_min_per_s",
                    "hedge_after_ms",
                ]
            },
        ),
        ("In-flight dedupe", {"fields": ["dedupe"]}),
    ]

    @admin.display(description="Breaker")
    def breaker(self, service: models.Service) -> str:
        return (
            f"{service.breaker_failure_threshold} failures/{service.breaker_window_s}s, "
            f"open {service.breaker_open_s}s, {service.breaker_half_open_probes} probes"
        )

    @admin.display(description="Retry")
    def retry(self, service: models.Service) -> str:
        if service.retry_max_retries == 0:
            return "no retries"
        on = ", ".join(service.retry_on) or "nothing"
        return f"{service.retry_max_retries} retries, {service.retry_backoff} from {service.retry_base_ms} ms, on {on}"
