"""Configuration versions: every change commits one immutable ``ConfigRevision``.

Serialisation: a change takes the row lock of the ``ConfigVersion`` singleton
(``SELECT ... FOR UPDATE``) before it reads what it records, and holds it to commit.
Two changes therefore commit one after the other, and the second one's document
(read under READ COMMITTED after the lock) includes the first one's change: no
version loses another's. Writers that replace the whole configuration (import, API,
rollback) lock *first*, so a conflicting admin save waits rather than deadlocks.

Workers keep polling one cheap value, the singleton's ``counter-token``; the counter
is the number of the newest version.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from django.db import transaction

from registry import models
from registry.config.changes import change_summary
from registry.selectors import config_document_get
from registry.signals import config_changed


class VersionConflict(Exception):
    """The configuration is not at the version the caller expected (If-Match, --expect-version)."""

    def __init__(self, *, expected: int, current: int) -> None:
        super().__init__(f"the configuration is at version {current}, not {expected}")
        self.expected, self.current = expected, current


@dataclass(frozen=True, slots=True)
class Author:
    """Who makes a change and through which door (contract: who, source, comment)."""

    source: str
    user: Any = None  # a Django user, or None for the import command
    comment: str = ""

    @property
    def who(self) -> str:
        if self.user is not None and getattr(self.user, "is_authenticated", False):
            return str(self.user.get_username())
        return "import" if self.source == models.VersionSource.IMPORT else "system"


def version_lock() -> int:
    """Lock the version row for the rest of the transaction; the current version number."""
    assert transaction.get_connection().in_atomic_block, "lock inside the change's transaction"
    models.ConfigVersion.objects.bulk_create([models.ConfigVersion(pk=1)], ignore_conflicts=True)
    return models.ConfigVersion.objects.select_for_update().values_list("counter", flat=True).get(pk=1)


def version_expect(expected: int | None) -> int:
    """Lock, then raise VersionConflict unless the current version is ``expected`` (None: any)."""
    current = version_lock()
    if expected is not None and current != expected:
        raise VersionConflict(expected=expected, current=current)
    return current


def version_record(*, author: Author, summary: str | None = None) -> models.ConfigRevision:
    """Record the configuration as it now is (this transaction's changes included) as the
    next version, and move the value workers poll. Call inside the change's transaction."""
    with transaction.atomic():
        number = version_lock() + 1
        document = config_document_get()
        previous = models.ConfigRevision.objects.order_by("-number").values_list("document", flat=True).first()
        revision = models.ConfigRevision.objects.create(
            number=number,
            user=author.user if getattr(author.user, "is_authenticated", False) else None,
            who=author.who,
            source=author.source,
            comment=author.comment[:5000],
            summary=summary if summary is not None else change_summary(cast(Any, previous), document),
            document=cast(Any, document),
        )
        token = uuid.uuid4().hex
        models.ConfigVersion.objects.filter(pk=1).update(counter=number, token=token)
        value = f"{number}-{token}"
        transaction.on_commit(lambda: config_changed.send(sender=version_record, version=value))
    return revision


def version_current() -> int:
    """The number of the newest version (0 before the first change)."""
    row = models.ConfigVersion.objects.filter(pk=1).values_list("counter", flat=True).first()
    return int(row or 0)
