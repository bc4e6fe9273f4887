"""The orchestration layer overview (one row) with its gateway-wide rate limits."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from registry import models
from registry.admin.problems import add_problems
from registry.admin.versioning import ConfigVersionBumpMixin
from registry.choices import ClientAuthType
from registry.fragments import layer_problems

_FIELDS = (
    {
        "name": "name",
        "owner": "owner",
        "base_path": "base_path",
        "transport": "transport",
        "auth.type": "auth_types",
        "auth.oauth2_introspection": "introspection_url",
        "auth.header": "api_key_header",
        "auth.jwt": "jwt_algorithms",
    }
    | {
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
    | {
        f"auth.oauth2_introspection.{key}": f"introspection_{key}"
        for key in ("url", "client_id_env", "client_secret_env", "cache_s", "user_claim")
    }
)


class LayerForm(forms.ModelForm[models.Layer]):
    class Meta:
        model = models.Layer
        fields = "__all__"

    def clean_jwt_algorithms(self) -> list[str]:
        return self.cleaned_data.get("jwt_algorithms") or ["HS256"]

    def clean_auth_types(self) -> Any:
        return self.cleaned_data.get("auth_types") or []

    def clean(self) -> dict[str, Any]:
        """A list of types decides; its first entry is the auth type (the one the list shows)."""
        data = super().clean() or {}
        kinds = data.get("auth_types")
        if isinstance(kinds, list) and kinds and isinstance(kinds[0], str) and kinds[0] in ClientAuthType.values:
            data["auth_type"] = kinds[0]
        return data

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
        ("Client authentication", {"fields": ["auth_type", "auth_types", "api_key_header"]}),
        (
            "OAuth2 token introspection (client credentials are env var names, never values)",
            {
                "fields": [
                    "introspection_url",
                    "introspection_client_id_env",
                    "introspection_client_secret_env",
                    "introspection_cache_s",
                    "introspection_user_claim",
                ]
            },
        ),
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
