"""The admin's version pages: list, diff, rollback behind its permission, history links."""

from __future__ import annotations

import copy
from html import unescape

import pytest
from django.contrib.auth.models import Permission

from registry import models
from registry.services import config_import

pytestmark = pytest.mark.django_db
LIST = "/admin/registry/configrevision/"


@pytest.fixture
def two_versions(document, monkeypatch, tmp_path):
    for name in ("GATEWAY_JWT_SECRET", "PRICING_API_KEY", "INVENTORY_TOKEN"):
        monkeypatch.setenv(name, "s3cret")
    for key in ("cert_file", "key_file", "ca_file"):
        (tmp_path / key).write_text("pem")
        document["services"]["payment"]["auth"][key] = str(tmp_path / key)
    config_import(document=document)
    faster = copy.deepcopy(document)
    faster["endpoints"][0]["calls"][3]["timeout_ms"] = 300
    config_import(document=faster)


def test_list_and_diff_page(admin_client, two_versions) -> None:
    page = unescape(admin_client.get(LIST).content.decode())
    assert "endpoint checkout-summary: calls.shipping.timeout_ms 500 → 300" in page
    second = models.ConfigRevision.objects.get(number=2)
    detail = unescape(admin_client.get(f"{LIST}{second.pk}/change/").content.decode())
    assert '<div class="removed">-        timeout_ms: 500</div>' in detail
    assert '<div class="added">+        timeout_ms: 300</div>' in detail
    assert "Roll back to this version" in detail


def test_rollback_needs_the_permission_and_a_confirmation(client, django_user_model, two_versions) -> None:
    staff = django_user_model.objects.create_user("editor", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_configrevision"))
    client.force_login(staff)
    first = models.ConfigRevision.objects.get(number=1)
    assert "Roll back to this version" not in client.get(f"{LIST}{first.pk}/change/").content.decode()
    assert client.post(f"{LIST}1/rollback/").status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="rollback_configversion"))
    staff = django_user_model.objects.get(pk=staff.pk)
    client.force_login(staff)
    confirm = client.get(f"{LIST}1/rollback/")
    assert confirm.status_code == 200 and models.ConfigRevision.objects.count() == 2  # asking writes nothing
    done = client.post(f"{LIST}1/rollback/", {"comment": "undo"})
    assert done.status_code == 302
    third = models.ConfigRevision.objects.get(number=3)
    assert (third.source, third.who, third.comment) == ("rollback", "editor", "undo")
    assert models.Call.objects.get(call_id="shipping").timeout_ms == 500


def test_endpoint_and_service_pages_link_to_their_history(admin_client, two_versions) -> None:
    endpoint = models.Endpoint.objects.get(name="checkout-summary")
    page = admin_client.get(f"/admin/registry/endpoint/{endpoint.pk}/change/").content.decode()
    assert f'href="{LIST}?q=endpoint+checkout-summary"' in page
    history = unescape(admin_client.get(f"{LIST}?q=endpoint+checkout-summary").content.decode())
    assert "calls.shipping.timeout_ms 500 → 300" in history
    service = models.Service.objects.get(name="cart")
    assert (
        f'href="{LIST}?q=service+cart"'
        in admin_client.get(f"/admin/registry/service/{service.pk}/change/").content.decode()
    )


def test_an_admin_save_records_who_and_what(admin_client, two_versions) -> None:
    from tests.registry.test_admin import endpoint_post_data

    endpoint = models.Endpoint.objects.get(name="checkout-summary")
    response = admin_client.post(
        f"/admin/registry/endpoint/{endpoint.pk}/change/", endpoint_post_data(endpoint, timeout_ms=2500)
    )
    assert response.status_code == 302, response.content[:2000]
    latest = models.ConfigRevision.objects.order_by("-number").first()
    assert (latest.number, latest.source, latest.who) == (3, "admin", "admin")
    assert latest.summary == "endpoint checkout-summary: timeout_ms 2000 → 2500"
