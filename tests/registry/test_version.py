"""The configuration version: bumped on import and admin saves, shared through the cache."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from registry.selectors import CONFIG_VERSION_CACHE_KEY, config_version_get, config_version_read
from registry.services import config_import, config_version_bump


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.delete(CONFIG_VERSION_CACHE_KEY)
    yield
    cache.delete(CONFIG_VERSION_CACHE_KEY)


@pytest.mark.django_db
def test_an_empty_database_has_version_zero():
    assert config_version_read() == "0-"
    assert config_version_get() == "0-"


@pytest.mark.django_db
def test_bump_changes_the_version_and_publishes_it_on_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        version = config_version_bump()
    assert version.startswith("1-") and version == config_version_read()
    assert cache.get(CONFIG_VERSION_CACHE_KEY) is None  # not before the commit
    callbacks[0]()
    assert cache.get(CONFIG_VERSION_CACHE_KEY) == version
    assert config_version_get() == version


@pytest.mark.django_db
def test_import_bumps_the_version(document, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = config_import(document=document)
        second = config_import(document=document)
    assert (first.split("-")[0], second.split("-")[0]) == ("1", "2")
    assert config_version_get() == second


@pytest.mark.django_db
def test_a_cache_miss_falls_back_to_the_database():
    version = config_version_bump()
    assert config_version_get() == version
    assert cache.get(CONFIG_VERSION_CACHE_KEY) == version
