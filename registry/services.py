"""Writes to the registry: import a configuration, bump its version, manage API keys.

Every change goes through here (admin ``save_model``/actions and the import
call these explicitly; there are no model signals).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from registry import models
from registry.config.problems import ConfigInvalid
from registry.config.validation import config_check
from registry.importing import configuration_replace
from registry.selectors import api_key_hash
from registry.signals import config_changed

API_KEY_PREFIX = "gwk_"


def config_version_bump() -> str:
    """A new version, in the database only: every worker polls it from there (no
    copy elsewhere can go stale). Once the change commits, ``config_changed`` lets
    this process look at once."""
    with transaction.atomic():
        models.ConfigVersion.objects.get_or_create(pk=1)
        token = uuid.uuid4().hex
        models.ConfigVersion.objects.filter(pk=1).update(counter=F("counter") + 1, token=token)
        version = models.ConfigVersion.objects.get(pk=1).value
        transaction.on_commit(lambda: config_changed.send(sender=config_version_bump, version=version))
    return version


def config_import(*, document: Any) -> str:
    """Check ``document`` and replace the whole configuration with it, atomically.

    Raises ConfigInvalid (with every problem) before touching anything. API keys
    are kept. Returns the new configuration version.
    """
    problems = config_check(document)
    if problems:
        raise ConfigInvalid(problems)
    with transaction.atomic():
        configuration_replace(document)
        return config_version_bump()


def api_key_create(*, name: str, subject: str) -> tuple[models.ApiKey, str]:
    """A new client API key and its plaintext, which is shown once and never stored."""
    plaintext = API_KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        key = models.ApiKey.objects.create(
            name=name, subject=subject, prefix=plaintext[:12], key_hash=api_key_hash(plaintext)
        )
        config_version_bump()
    return key, plaintext


def api_key_revoke(*, api_key: models.ApiKey) -> None:
    """Revoke a key (kept for the audit trail); idempotent."""
    if api_key.revoked_at is not None:
        return
    with transaction.atomic():
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        config_version_bump()


def api_key_delete(*, keys: QuerySet[models.ApiKey]) -> int:
    """Delete keys (the admin's delete page and bulk action); how many were deleted.
    A deleted key stops working like a revoked one: the version moves."""
    with transaction.atomic():
        deleted, _ = keys.delete()
        if deleted:
            config_version_bump()
    return deleted
