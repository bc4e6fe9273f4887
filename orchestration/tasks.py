"""Celery tasks: purging the response cache for an invalidation webhook.

The webhook view checks the signature and the payload, then queues
``purge_cache_tags`` with the normalised payload. The task renders the tags
with the plan the worker serves (each endpoint's ``invalidate_on`` rules for
the event) and purges them. Purging is idempotent, so Celery may retry it
freely: it does, with backoff, whenever Redis cannot be reached. Without a
broker the task runs in-process (``task_always_eager``), the embedded default.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

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
    autoretry_for=(StoreUnavailable,),
    retry_backoff=1,
    retry_backoff_max=60,
    max_retries=8,
    ignore_result=False,
)
def purge_cache_tags(invalidation: dict[str, Any]) -> dict[str, Any]:
    edge = _edge()
    tags = tags_to_purge(edge.plan(), invalidation)
    purged = edge.cache.purge(tags) if tags else 0
    logger.info("cache purge: %d entries for %d tags", purged, len(tags), extra={"tags": list(tags)[:20]})
    return {"tags": list(tags), "purged": purged}
