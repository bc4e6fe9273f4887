"""Celery tasks: purging the response cache for an invalidation webhook.

The webhook view checks the signature and the payload, then queues
``purge_cache_tags`` with the normalised payload. The task renders the tags
with the plan the worker serves (each endpoint's ``invalidate_on`` rules for
the event) and purges them. Purging is idempotent, so Celery may retry it
freely: it does, with backoff, whenever Redis cannot be reached. With
``GATEWAY_CDN_PURGE_URL`` set it then queues ``purge_cdn_tags``, which POSTs the tags to
the CDN and is retried (bounded backoff) until the CDN confirms. Without a
broker the task runs in-process (``task_always_eager``), the embedded default.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from orchestration.edge.cdn import CdnPurgeFailed
from orchestration.edge.invalidation import tags_to_purge
from orchestration.edge.redis_boundary import StoreUnavailable
from orchestration.web.edge import Edge, installed_edge

logger = logging.getLogger(__name__)


def _edge() -> Edge:
    """The serving process installs the edge when its URLs load; a worker does it here."""
    edge = installed_edge()
    if edge is None:
        from gateway_project import wiring

        wiring.install()
        edge = installed_edge()
    if edge is None:
        raise RuntimeError("gateway edge not installed (gateway_project.wiring)")
    return edge


@shared_task(  # type: ignore[untyped-decorator]
    name="gateway.purge_cache_tags",
    bind=True,
    autoretry_for=(StoreUnavailable,),
    retry_backoff=1,
    retry_backoff_max=60,
    max_retries=8,
    ignore_result=False,
)
def purge_cache_tags(self: Any, invalidation: dict[str, Any]) -> dict[str, Any]:
    edge = _edge()
    tags = tags_to_purge(edge.plan(), invalidation)
    purged = edge.cache.purge(tags) if tags else 0
    logger.info("cache purge: %d entries for %d tags", purged, len(tags), extra={"tags": list(tags)[:20]})
    if edge.cdn is not None and tags:
        # After our own purge, so the CDN's refetch cannot get the stale entry back from us.
        _purge_cdn(self, list(tags))
    return {"tags": list(tags), "purged": purged}


# CDN purges are retried until they succeed: exponential backoff from 1 s, capped at
# CDN_RETRY_BACKOFF_MAX_S (with Celery's full jitter), up to CDN_MAX_RETRIES times —
# 2000 retries at the 5-minute cap is about a week of CDN outage before one is dropped.
CDN_RETRY_BACKOFF_MAX_S = 300
CDN_MAX_RETRIES = 2000


def _purge_cdn(task: Any, tags: list[str]) -> None:
    if not task.request.is_eager:
        purge_cdn_tags.delay(tags)  # its own task: its retries never repeat our purge
        return
    # No broker (embedded default): one try, in-process. An eager Celery retry would
    # re-run at once, without its countdown, hammering a CDN that is down.
    try:
        purge_cdn_tags.run(tags)
    except CdnPurgeFailed:
        logger.exception("CDN purge failed and is not retried without a Celery broker", extra={"tags": tags[:20]})


@shared_task(  # type: ignore[untyped-decorator]
    name="gateway.purge_cdn_tags",
    autoretry_for=(CdnPurgeFailed,),
    retry_backoff=1,
    retry_backoff_max=CDN_RETRY_BACKOFF_MAX_S,
    max_retries=CDN_MAX_RETRIES,
    ignore_result=False,
)
def purge_cdn_tags(tags: list[str]) -> dict[str, Any]:
    cdn = _edge().cdn
    if cdn is None:
        logger.warning("CDN purge skipped: GATEWAY_CDN_PURGE_URL is not set in this worker")
        return {"tags": tags, "sent": 0}
    sent = cdn.purge(tags)
    logger.info("CDN purge: %d tags", sent, extra={"tags": tags[:20]})
    return {"tags": tags, "sent": sent}
