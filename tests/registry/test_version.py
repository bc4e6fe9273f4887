"""The configuration version: kept in the database only, bumped by every change (import,
admin saves and deletes, API keys created, revoked and deleted), announced on commit."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from registry import models
from registry.selectors import config_version_read
from registry.services import api_key_create, api_key_delete, config_import, config_version_bump
from registry.signals import config_changed

pytestmark = pytest.mark.django_db


@pytest.fixture
def announced() -> Any:
    """The versions ``config_changed`` announced while the test ran."""
    versions: list[str] = []

    def receiver(version: str, **_: Any) -> None:
        versions.append(version)

    config_changed.connect(receiver)
    yield versions
    config_changed.disconnect(receiver)


def counter() -> int:
    return int(config_version_read().split("-")[0])


def test_an_empty_database_has_version_zero():
    assert config_version_read() == "0-"


def test_bump_changes_the_version_and_announces_it_on_commit(django_capture_on_commit_callbacks, announced):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        version = config_version_bump()
    assert version.startswith("1-") and version == config_version_read()
    assert announced == []  # not before the commit
    callbacks[0]()
    assert announced == [version]


def test_import_bumps_the_version(document, django_capture_on_commit_callbacks, announced):
    with django_capture_on_commit_callbacks(execute=True):
        first = config_import(document=document)
        second = config_import(document=document)
    assert (first.split("-")[0], second.split("-")[0]) == ("1", "2")
    assert config_version_read() == second
    assert announced == [first, second]


def test_deleting_api_keys_bumps_once_and_deleting_none_does_not():
    first, _ = api_key_create(name="a", subject="1")
    second, _ = api_key_create(name="b", subject="2")
    assert counter() == 2
    assert api_key_delete(keys=models.ApiKey.objects.filter(pk__in=[first.pk, second.pk])) == 2
    assert counter() == 3
    assert api_key_delete(keys=models.ApiKey.objects.none()) == 0
    assert counter() == 3


# Through the admin


def add_key(admin_client: Any, name: str) -> models.ApiKey:
    answer = admin_client.post(reverse("admin:registry_apikey_add"), {"name": name, "subject": name})
    assert answer.status_code == 200 and b"gwk_" in answer.content  # the page showing the new key
    return models.ApiKey.objects.get(name=name)


def test_admin_api_key_create_revoke_and_delete_each_bump(admin_client):
    key = add_key(admin_client, "mobile")
    assert counter() == 1
    changelist = reverse("admin:registry_apikey_changelist")
    admin_client.post(changelist, {"action": "revoke", "_selected_action": [key.pk]})
    assert counter() == 2
    delete = reverse("admin:registry_apikey_delete", args=[key.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not models.ApiKey.objects.exists()
    assert counter() == 3


def test_admin_bulk_delete_of_api_keys_bumps(admin_client):
    keys = [add_key(admin_client, name) for name in ("web", "ios", "android")]
    assert counter() == 3
    answer = admin_client.post(
        reverse("admin:registry_apikey_changelist"),
        {"action": "delete_selected", "_selected_action": [key.pk for key in keys[:2]], "post": "yes"},
    )
    assert answer.status_code == 302
    assert list(models.ApiKey.objects.values_list("name", flat=True)) == ["android"]
    assert counter() == 4


def test_admin_bulk_delete_of_services_bumps(admin_client, document):
    config_import(document=document)
    before = counter()
    unused = models.Service.objects.create(name="unused", base_url="http://127.0.0.1:9999", owner="nobody")
    answer = admin_client.post(
        reverse("admin:registry_service_changelist"),
        {"action": "delete_selected", "_selected_action": [unused.pk], "post": "yes"},
    )
    assert answer.status_code == 302
    assert not models.Service.objects.filter(name="unused").exists()
    assert counter() == before + 1


def test_a_change_committed_here_is_served_here_at_once(document, django_capture_on_commit_callbacks):
    """The worker that saved a change does not wait for its next poll (``config_changed``)."""
    from django.urls import get_resolver

    from gateway_project import wiring

    get_resolver().url_patterns  # noqa: B018 - gateway_project.urls installs the wiring
    holder = wiring.runtime_holder()
    with django_capture_on_commit_callbacks(execute=True):
        config_import(document=document)
    holder.invalidate()
    first = holder.current().plan.version
    with django_capture_on_commit_callbacks(execute=True):
        second = config_import(document=document)
    assert holder.current().plan.version == second != first
    holder.invalidate()
