"""The admin refuses a save under which one user's cached answer could reach another,
with the message ``gateway check`` prints (the admin calls the same validator)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from registry import models
from registry.services import config_import
from tests.registry.test_admin import endpoint_post_data, endpoint_url, html

pytestmark = pytest.mark.django_db

SHARED = "endpoints[0].cache.scope: a shared entry would serve one user's answer to another: "
USER_WITHOUT_AUTH = (
    "scope 'user' keys entries by the user id, but layer.auth.type is 'none': "
    "every client would get the same entry; use scope: shared, or turn on client auth"
)


@pytest.fixture
def imported(document: dict[str, Any]) -> dict[str, Any]:
    config_import(document=document)
    return document


def posted_back(page: Any) -> dict[str, Any]:
    """What an admin change page posts when saved unchanged: its form and inline formsets."""
    forms = [page.context["adminform"].form]
    data: dict[str, Any] = {}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data |= {field.html_name: field.value() for field in management}
        forms += inline.formset.forms
    for form in forms:
        for field in form:
            value = field.value()
            if value is True:
                data[field.html_name] = "on"
            elif value is not None and value is not False:  # 0 is a value
                data[field.html_name] = value
    return data


def test_an_endpoint_saved_shared_while_forwarding_the_clients_token_is_refused(
    admin_client: Client, imported: Any
) -> None:
    endpoint = models.Endpoint.objects.get(name="dashboard")  # calls[0] calls 'cart': bearer_forward
    page = html(admin_client.post(endpoint_url("dashboard"), endpoint_post_data(endpoint, cache_scope="shared")))
    assert (
        SHARED + "calls[0] sends the client's credentials to service 'cart' (auth bearer_forward); use scope: user"
    ) in page
    assert models.Endpoint.objects.get(name="dashboard").cache_scope == "user"


def test_an_endpoint_saved_shared_while_reading_the_user_is_refused(admin_client: Client, imported: Any) -> None:
    models.Service.objects.filter(name="cart").update(auth_type="none")
    endpoint = models.Endpoint.objects.get(name="dashboard")
    data = endpoint_post_data(
        endpoint, cache_scope="shared", cache_tags='["dashboard"]', response="me: '{{ user.sub }}'"
    )
    page = html(admin_client.post(endpoint_url("dashboard"), data))
    assert SHARED + "response.me reads 'user'; use scope: user" in page
    assert models.Endpoint.objects.get(name="dashboard").cache_scope == "user"
    # The same save without reading the user goes through: only the rule refused it.
    data["response"] = "userId: '{{ request.path.user_id }}'"
    assert admin_client.post(endpoint_url("dashboard"), data).status_code == 302
    assert models.Endpoint.objects.get(name="dashboard").cache_scope == "shared"


def test_an_endpoint_saved_user_scoped_without_client_auth_is_refused(admin_client: Client, imported: Any) -> None:
    models.Layer.objects.update(auth_type="none")
    endpoint = models.Endpoint.objects.get(name="dashboard")
    page = html(admin_client.post(endpoint_url("dashboard"), endpoint_post_data(endpoint, cache_ttl_s=30)))
    assert f"endpoints[0].cache.scope: {USER_WITHOUT_AUTH}" in page
    assert models.Endpoint.objects.get(name="dashboard").cache_ttl_s == 60


def test_turning_client_auth_off_under_a_user_scoped_endpoint_is_refused(admin_client: Client, imported: Any) -> None:
    url = reverse("admin:registry_layer_change", args=[models.Layer.objects.get().pk])
    data = posted_back(admin_client.get(url))
    page = html(admin_client.post(url, data | {"auth_type": "none", "jwt_algorithms": ""}))
    assert f"layer.auth.type: endpoint 'dashboard' cache.scope: {USER_WITHOUT_AUTH}" in page
    assert models.Layer.objects.get().auth_type == "jwt"
    # Once the endpoint is no longer cached per user, the same change is saved.
    models.Endpoint.objects.filter(name="dashboard").update(cache_ttl_s=0)
    assert admin_client.post(url, data | {"auth_type": "none", "jwt_algorithms": ""}).status_code == 302
    assert models.Layer.objects.get().auth_type == "none"


def test_forwarding_the_clients_token_to_a_service_of_a_shared_endpoint_is_refused(
    admin_client: Client, imported: Any
) -> None:
    models.Service.objects.filter(name="cart").update(auth_type="none")
    models.Endpoint.objects.filter(name="dashboard").update(cache_scope="shared", cache_tags=[])
    url = reverse("admin:registry_service_change", args=[models.Service.objects.get(name="cart").pk])
    data = posted_back(admin_client.get(url))
    page = html(admin_client.post(url, data | {"auth_type": "bearer_forward"}))
    assert (
        "services.cart.auth: endpoint 'dashboard' cache.scope: a shared entry would serve one user's answer to "
        "another: calls[0] sends the client's credentials to service 'cart' (auth bearer_forward); use scope: user"
    ) in page
    assert models.Service.objects.get(name="cart").auth_type == "none"
    # An edit that leaves the endpoints safe is saved.
    assert admin_client.post(url, data | {"owner": "Cart Team 2"}).status_code == 302
