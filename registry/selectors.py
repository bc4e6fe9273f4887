"""Reads of the registry: the configuration version, the whole document, API keys."""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Iterator
from typing import Any

from django.db import connection, transaction
from django.db.models import Prefetch

from registry import models
from registry.config.schema import SUPPORTED_VERSION
from registry.documents import call_document, endpoint_document, layer_document, service_document


def config_version_read() -> str:
    """The version as the database has it: the source of truth, which every worker
    polls about once a second (docs/adr/0002-compiled-versioned-plans.md). In SQL
    written once rather than a queryset: the ORM's building of this one-row read
    was most of an idle worker's own CPU (bench/README.md, round 10)."""
    with connection.cursor() as cursor:
        cursor.execute(_version_sql(connection.vendor), [1])
        row = cursor.fetchone()
    return f"{row[0]}-{row[1]}" if row is not None else "0-"


@functools.cache
def _version_sql(vendor: str) -> str:
    quote, table = connection.ops.quote_name, models.ConfigVersion._meta.db_table
    return f"SELECT {quote('counter')}, {quote('token')} FROM {quote(table)} WHERE {quote('id')} = %s"


@contextlib.contextmanager
def config_snapshot() -> Iterator[None]:
    """Reads inside see one committed state of the registry, so a plan compiled in
    it carries the version of exactly the configuration it was compiled from."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":  # SQLite: a transaction is a snapshot already
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def layer_get() -> models.Layer | None:
    """The served layer: the first one (there is normally exactly one)."""
    return models.Layer.objects.prefetch_related("rate_limits").order_by("id").first()


def config_document_get() -> dict[str, Any]:
    """The whole configuration as a canonical document, in a handful of queries."""
    layer = layer_get()
    services = list(models.Service.objects.order_by("name"))
    names = {service.pk: service.name for service in services}
    endpoints = models.Endpoint.objects.order_by("position", "name").prefetch_related(
        Prefetch("calls", queryset=models.Call.objects.order_by("stage", "position", "id")),
        Prefetch("rate_limits", queryset=models.RateLimitRule.objects.order_by("position", "id")),
    )
    return {
        "version": SUPPORTED_VERSION,
        "layer": layer_document(layer, layer.rate_limits.all() if layer is not None else ()),
        "services": {service.name: service_document(service) for service in services},
        "endpoints": [
            endpoint_document(ep, [call_document(c, names[c.service_id]) for c in ep.calls.all()], ep.rate_limits.all())
            for ep in endpoints
        ],
    }


def api_key_hash(presented: str) -> str:
    return hashlib.sha256(presented.encode("utf-8")).hexdigest()


def api_key_subject_get(*, presented: str) -> str | None:
    """The user id a presented client API key acts as, or None (unknown or revoked)."""
    if not presented:
        return None
    key = models.ApiKey.objects.filter(key_hash=api_key_hash(presented), revoked_at__isnull=True).first()
    return key.subject if key is not None else None


def api_key_subjects_active() -> dict[str, str]:
    """SHA-256 of every active key -> subject, for the request path to hold in memory.

    Creating or revoking a key bumps the configuration version, so a worker that
    reloads this on a version change never queries per request.
    """
    rows = models.ApiKey.objects.filter(revoked_at__isnull=True).values_list("key_hash", "subject")
    return dict(rows)
