"""The orchestration layer overview (one row) with its gateway-wide rate limits."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from registry import models
from registry.admin.problems import add_problems
from registry.admin.versioning import ConfigVersionBumpMixin
from registry.fragments import layer_problems

_FIELDS = {
    "name": "name",
    "owner": "owner",
    "base_path": "base_path",
    "transport": "transport",
    "auth.type": "auth_type",
    "auth.header": "api_key_header",
    "auth.jwt": "jwt_algorithms",
} | {
    f"auth.jwt.{key}": f"jwt_{key}"
    for key in (
        "algorithms",
        "secret_env",
        "public_key_file",
        "jwks_url",
        "issuer",
        "audience",
        "user_claim",
        "leeway_s",
    )
}


class LayerForm(forms.ModelForm[models.Layer]):
    class Meta:
        model = models.Layer
        fields = "__all__"

    def clean_jwt_algorithms(self) -> list[str]:
        return self.cleaned_data.get("jwt_algorithms") or ["HS256"]

    def _post_clean(self) -> None:
        """After the instance is built from the form: check it like `gateway check`."""
        super()._post_clean()  # type: ignore[misc]
        for problem in add_problems(self, layer_problems(self.instance), "layer", _FIELDS):
            self.add_error(None, str(problem))


class LayerRateLimitInline(admin.TabularInline[models.RateLimitRule, models.Layer]):
    model = models.RateLimitRule
    fk_name = "layer"
    exclude = ["endpoint", "position"]
    extra = 0


@admin.register(models.Layer)
class LayerAdmin(ConfigVersionBumpMixin, admin.ModelAdmin[models.Layer]):
    form = LayerForm
    inlines = [LayerRateLimitInline]
    list_display = ["name", "owner", "base_path", "transport", "auth_type"]
    fieldsets = [
        (None, {"fields": ["name", "owner", "base_path", "transport"]}),
        ("Client authentication", {"fields": ["auth_type", "api_key_header"]}),
        (
            "JWT (the secret is an env var name, never a value)",
            {
                "fields": [
                    "jwt_algorithms",
                    "jwt_secret_env",
                    "jwt_public_key_file",
                    "jwt_jwks_url",
                    "jwt_issuer",
                    "jwt_audience",
                    "jwt_user_claim",
                    "jwt_leeway_s",
                ]
            },
        ),
    ]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        """One layer is served; edit it rather than adding a second."""
        return not models.Layer.objects.exists() and super().has_add_permission(request)
