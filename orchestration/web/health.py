"""Liveness and readiness probes (contract section 3)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        logger.warning("readiness: database unreachable", exc_info=True)
        return False


def _redis_ok() -> bool | None:
    """None when no Redis is configured (embedded default)."""
    if not settings.REDIS_URL:
        return None
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001
        logger.warning("readiness: redis unreachable")
        return False


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: database and (when configured) Redis reachable; 503 names what is not."""
    checks: dict[str, str] = {"database": "ok" if _database_ok() else "unreachable"}
    redis_state = _redis_ok()
    if redis_state is not None:
        checks["redis"] = "ok" if redis_state else "unreachable"
    failing = [name for name, state in checks.items() if state != "ok"]
    body: dict[str, object] = {"status": "ok" if not failing else "unavailable", "checks": checks}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
