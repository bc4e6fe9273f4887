"""Liveness and readiness probes (contract section 3)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection
from django.http import HttpRequest, JsonResponse

from orchestration.clock import Clock, SystemClock
from orchestration.web import draining
from orchestration.web.readiness import Check, ReadinessProbe

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        logger.warning("readiness: database unreachable", exc_info=True)
        return False


def redis_check(client: Any) -> Check:
    """A PING over ``client`` (the process's shared client: its pooled connection is reused)."""

    def redis_ok() -> bool:
        try:
            return bool(client.ping())
        except Exception:  # noqa: BLE001 - any failure means not ready
            logger.warning("readiness: redis unreachable")
            return False

    return redis_ok


def readiness_probe(*, redis_client: Any, clock: Clock | None = None) -> ReadinessProbe:
    """The database always; Redis when configured (None: the embedded default)."""
    checks: dict[str, Check] = {"database": database_ok}
    if redis_client is not None:
        checks["redis"] = redis_check(redis_client)
    return ReadinessProbe(checks, clock=SystemClock() if clock is None else clock)


_probe = ReadinessProbe({"database": database_ok}, clock=SystemClock())


def install_readiness(probe: ReadinessProbe) -> ReadinessProbe:
    """Serve ``probe`` from now on; returns the one it replaces."""
    global _probe
    previous, _probe = _probe, probe
    return previous


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: database and (when configured) Redis reachable; 503 names what is not.
    The answer is at most a second old (orchestration/web/readiness.py), except while the
    instance drains before it stops: then 503 at once, from every worker, checking nothing
    (orchestration/web/draining.py)."""
    if draining.process_flag().is_raised():
        response = JsonResponse({"status": "draining", "failing": ["draining"]}, status=503)
        response["Cache-Control"] = "no-store"
        return response
    readiness = _probe.current()
    failing = readiness.failing
    body: dict[str, object] = {"status": "ok" if not failing else "unavailable", "checks": dict(readiness.checks)}
    if failing:
        body["failing"] = list(failing)
    response = JsonResponse(body, status=503 if failing else 200)
    response["Cache-Control"] = "no-store"
    return response
