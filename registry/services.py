"""Writes to the registry: import a configuration, bump its version, manage API keys.

Every change goes through here (admin ``save_model``/actions and the import
call these explicitly; there are no model signals).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from registry import models
from registry.config.changes import SUMMARY_MAX_CHARS, change_summary
from registry.config.problems import ConfigInvalid
from registry.config.readiness import serving_problems
from registry.config.validation import config_check
from registry.importing import configuration_replace
from registry.selectors import api_key_hash, config_document_get, config_version_read
from registry.versioning import Author, version_expect, version_lock, version_record

API_KEY_PREFIX = "gwk_"


def config_version_bump(*, author: Author | None = None, summary: str | None = None) -> str:
    """Record a new version (``registry.versioning``) in the database only: every worker
    polls it from there (no copy elsewhere can go stale). Once the change commits,
    ``config_changed`` lets this process look at once. Without ``author``: an admin change."""
    version_record(author=author or Author(source=models.VersionSource.ADMIN), summary=summary)
    return config_version_read()


def config_import(*, document: Any) -> str:
    """``config_replace`` by the import command; returns the value workers poll."""
    config_replace(document=document, author=Author(source=models.VersionSource.IMPORT))
    return config_version_read()


def config_replace(*, document: Any, author: Author, expect_version: int | None = None) -> models.ConfigRevision:
    """Check ``document`` and replace the whole configuration with it, atomically.

    Raises ConfigInvalid (with every problem) before touching anything, and
    VersionConflict (nothing written) unless the current version is ``expect_version``.
    API keys are kept. Returns the new version.
    """
    problems = config_check(document)
    if problems:
        raise ConfigInvalid(problems)
    with transaction.atomic():
        version_expect(expect_version)  # the lock first: a concurrent admin save waits, never deadlocks
        configuration_replace(document)
        return version_record(author=author)


def config_rollback(*, number: int, author: Author) -> models.ConfigRevision:
    """A new version whose configuration equals version ``number``'s.

    Raises ConfigRevision.DoesNotExist, or ConfigInvalid when that document no longer
    passes today's checks (nothing written)."""
    target = models.ConfigRevision.objects.get(number=number)
    problems = serving_problems(target.document)
    if problems:
        raise ConfigInvalid(problems)
    with transaction.atomic():
        version_lock()
        previous = config_document_get()
        configuration_replace(target.document)
        summary = f"rollback to version {number}: {change_summary(previous, config_document_get())}"
        return version_record(author=author, summary=summary[: SUMMARY_MAX_CHARS + 20])


def api_key_create(*, name: str, subject: str, author: Author | None = None) -> tuple[models.ApiKey, str]:
    """A new client API key and its plaintext, which is shown once and never stored."""
    plaintext = API_KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        version_lock()
        key = models.ApiKey.objects.create(
            name=name, subject=subject, prefix=plaintext[:12], key_hash=api_key_hash(plaintext)
        )
        config_version_bump(author=author, summary=f"api key {name!r} created")
    return key, plaintext


def api_key_revoke(*, api_key: models.ApiKey, author: Author | None = None) -> None:
    """Revoke a key (kept for the audit trail); idempotent."""
    if api_key.revoked_at is not None:
        return
    with transaction.atomic():
        version_lock()
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        config_version_bump(author=author, summary=f"api key {api_key.name!r} revoked")


def api_key_delete(*, keys: QuerySet[models.ApiKey], author: Author | None = None) -> int:
    """Delete keys (the admin's delete page and bulk action); how many were deleted.
    A deleted key stops working like a revoked one: the version moves."""
    with transaction.atomic():
        version_lock()
        names = sorted(keys.values_list("name", flat=True))
        deleted, _ = keys.delete()
        if deleted:
            config_version_bump(author=author, summary=f"api keys deleted: {', '.join(map(repr, names))}"[:480])
    return deleted
