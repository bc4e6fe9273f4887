"""Contract section 8's `layer.auth`: oauth2_introspection, session and a list of
types — check with locations, import/export round trip, compile, admin."""

from __future__ import annotations

from html import unescape
from typing import Any

import pytest
from django.urls import reverse

from registry import models
from registry.compiler import compile_plan
from registry.config.readiness import serving_problems
from registry.config.schema import DOCUMENT
from registry.config.structure import normalize
from registry.config.validation import config_check
from registry.selectors import config_document_get
from registry.services import config_import

INTROSPECTION = {
    "url": "https://auth.example.com/introspect",
    "client_id_env": "GATEWAY_INTROSPECTION_CLIENT_ID",
    "client_secret_env": "GATEWAY_INTROSPECTION_SECRET",
    "cache_s": 30,
    "user_claim": "uid",
}


def _with_auth(document: dict[str, Any], kinds: Any) -> dict[str, Any]:
    auth = document["layer"]["auth"]
    auth["type"] = kinds
    auth["oauth2_introspection"] = dict(INTROSPECTION)
    auth["session"] = {}
    auth["header"] = "X-Key"
    auth.pop("jwt")
    return document


def problems(document: Any) -> list[str]:
    return [str(problem) for problem in config_check(document)]


def test_a_list_of_types_with_their_settings_checks_clean(document):
    assert problems(_with_auth(document, ["session", "oauth2_introspection", "api_key"])) == []


def test_bad_auth_is_located(document):
    auth = _with_auth(document, ["session", "jwt", "oauth2_introspection", "session", "none"])["layer"]["auth"]
    auth["oauth2_introspection"] = {"url": "ftp://x", "client_id_env": "my id", "client_secret_env": "abc123secret"}
    assert problems(document) == [
        "layer.auth.type[2]: 'oauth2_introspection' never decides: an earlier type takes every bearer token",
        "layer.auth.type[3]: 'session' is listed twice",
        "layer.auth.type[4]: 'none' cannot be one of a list: a request without credentials gets 401",
    ]
    auth["type"] = ["oauth2_introspection"]
    got = problems(document)
    assert "layer.auth.header: only used when type is 'api_key'" in got
    assert "layer.auth.session: only used when type is 'session'" in got
    assert any(p.startswith("layer.auth.oauth2_introspection.url:") for p in got)
    assert any(p.startswith("layer.auth.oauth2_introspection.client_id_env: must name an environment") for p in got)
    assert any(p.startswith("layer.auth.oauth2_introspection.client_secret_env: must name") for p in got)
    auth["type"] = []
    assert problems(document) == ["layer.auth.type: at least one type is required"]
    auth["type"] = {"jwt": True}
    assert problems(document)[0].startswith("layer.auth.type: must be a string or a list of strings")
    del auth["oauth2_introspection"], auth["header"], auth["session"]
    auth["type"] = "oauth2_introspection"
    assert problems(document) == ["layer.auth.oauth2_introspection: required when type is 'oauth2_introspection'"]
    auth["type"] = "session"
    auth["oauth2_introspection"] = {"url": "https://a.example", "client_id_env": "A", "client_secret": "inline"}
    got = problems(document)
    assert "layer.auth.oauth2_introspection: only used when type is 'oauth2_introspection'" in got
    assert any("oauth2_introspection.client_secret" in p for p in got)  # a secret written inline is refused


def test_readiness_names_unset_client_credentials(document):
    _with_auth(document, ["oauth2_introspection"])
    document["layer"]["auth"].pop("header")
    document["layer"]["auth"].pop("session")
    got = [str(p) for p in serving_problems(document, environ={"GATEWAY_INTROSPECTION_CLIENT_ID": "x"})]
    assert [p for p in got if p.startswith("layer.")] == [
        "layer.auth.oauth2_introspection.client_secret_env: "
        "environment variable GATEWAY_INTROSPECTION_SECRET is not set"
    ]


@pytest.mark.django_db
def test_import_export_round_trip_and_the_plan(document):
    config_import(document=_with_auth(document, ["session", "oauth2_introspection", "api_key"]))
    exported = config_document_get()
    assert exported == normalize(document, DOCUMENT)
    assert exported["layer"]["auth"]["type"] == ["session", "oauth2_introspection", "api_key"]
    assert exported["layer"]["auth"]["oauth2_introspection"] == INTROSPECTION
    assert "jwt" not in exported["layer"]["auth"]
    config_import(document=exported)
    assert config_document_get() == exported
    auth = compile_plan().layer.auth
    assert (auth.type, auth.kinds, auth.api_key_header) == (
        "session",
        ("session", "oauth2_introspection", "api_key"),
        "X-Key",
    )
    assert auth.introspection is not None and (auth.introspection.cache_s, auth.introspection.user_claim) == (30, "uid")
    single = dict(exported)
    single["layer"] = dict(exported["layer"], auth={"type": "session"})
    config_import(document=single)
    assert config_document_get()["layer"]["auth"] == {"type": "session", "session": {}}
    assert compile_plan().layer.auth.kinds == ("session",)


@pytest.mark.django_db
def test_admin_edits_the_auth_and_checks_it(admin_client, document, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    config_import(document=document)
    layer = models.Layer.objects.get()
    url = reverse("admin:registry_layer_change", args=[layer.pk])
    page = unescape(admin_client.get(url).content.decode())
    assert "OAuth2 token introspection" in page and "introspection_client_secret_env" in page
    data = {
        "name": layer.name,
        "owner": layer.owner,
        "base_path": layer.base_path,
        "transport": "rest",
        "auth_type": "none",
        "auth_types": '["oauth2_introspection", "api_key"]',
        "api_key_header": "X-API-Key",
        "jwt_algorithms": '["HS256"]',
        "jwt_user_claim": "sub",
        "jwt_leeway_s": 0,
        "introspection_url": "https://idp.example.com/introspect",
        "introspection_client_id_env": "IDP_ID",
        "introspection_client_secret_env": "IDP_SECRET",
        "introspection_cache_s": 45,
        "introspection_user_claim": "sub",
        "rate_limits-TOTAL_FORMS": 0,
        "rate_limits-INITIAL_FORMS": 0,
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302, unescape(response.content.decode())[:3000]
    auth = config_document_get()["layer"]["auth"]
    assert auth["type"] == ["oauth2_introspection", "api_key"]
    assert auth["oauth2_introspection"]["cache_s"] == 45
    assert models.Layer.objects.get().auth_type == "oauth2_introspection"
    bad = unescape(admin_client.post(url, data | {"introspection_client_secret_env": "s3cr3t value"}).content.decode())
    assert "layer.auth.oauth2_introspection.client_secret_env: must name an environment variable" in bad
