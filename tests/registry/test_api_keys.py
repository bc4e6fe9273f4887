"""Client API keys: only the hash is stored; the plaintext is returned once."""

from __future__ import annotations

import hashlib

import pytest

from registry import models
from registry.selectors import api_key_subject_get, api_key_subjects_active, config_version_read
from registry.services import api_key_create, api_key_revoke


@pytest.mark.django_db
def test_create_returns_the_plaintext_once_and_stores_only_its_hash():
    key, plaintext = api_key_create(name="mobile app", subject="user-42")
    stored = models.ApiKey.objects.get(pk=key.pk)
    assert plaintext.startswith("gwk_") and len(plaintext) > 40
    assert stored.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert stored.prefix == plaintext[:12]
    assert plaintext not in {stored.name, stored.prefix, stored.key_hash, stored.subject}
    assert config_version_read().startswith("1-")


@pytest.mark.django_db
def test_lookup_by_presented_key():
    _, plaintext = api_key_create(name="mobile", subject="user-42")
    assert api_key_subject_get(presented=plaintext) == "user-42"
    assert api_key_subject_get(presented=plaintext + "x") is None
    assert api_key_subject_get(presented="") is None
    assert api_key_subjects_active() == {hashlib.sha256(plaintext.encode()).hexdigest(): "user-42"}


@pytest.mark.django_db
def test_a_revoked_key_no_longer_works():
    key, plaintext = api_key_create(name="mobile", subject="user-42")
    api_key_revoke(api_key=key)
    assert api_key_subject_get(presented=plaintext) is None
    assert api_key_subjects_active() == {}
    assert config_version_read().startswith("2-")
