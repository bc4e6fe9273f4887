"""Liveness and readiness probes (contract section 3)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, JsonResponse

from orchestration.clock import Clock, SystemClock
from orchestration.web import draining
from orchestration.web.kept_connection import close_quietly
from orchestration.web.readiness import Check, ReadinessProbe

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers. Touches nothing else."""
    return JsonResponse({"status": "ok"})


class DatabaseCheck:
    """``SELECT 1`` over one connection of its own, kept open between checks.

    Not a request's connection: under gevent each greenlet has its own, closed when
    its request ends (CONN_MAX_AGE=0), so a check on it opened a new database
    connection per refresh. This one is made by ``connect`` (a database wrapper
    outside Django's per-thread handler, so nothing else closes it), used by one
    caller at a time (its lock; the probe's lock already serialises refreshes), and
    replaced when it fails: a connection the server dropped (a restart, an idle
    timeout) is retried once on a new one before the database counts as unreachable.
    """

    def __init__(self, connect: Callable[[], BaseDatabaseWrapper]) -> None:
        self._connect = connect
        self._connection: BaseDatabaseWrapper | None = None
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        with self._lock:
            reused = self._connection is not None
            failure = self._select_one()
            if failure is not None and reused:  # the kept one may have died (a restart): once on a new one
                failure = self._select_one()
        if failure is not None:
            logger.warning("readiness: database unreachable", exc_info=failure)
        return failure is None

    def _select_one(self) -> Exception | None:
        """None when ``SELECT 1`` answered; else the failure, and the connection is dropped."""
        try:
            if self._connection is None:
                self._connection = self._connect()
                self._connection.inc_thread_sharing()  # refreshes run on whichever greenlet asks
            with self._connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return None
        except Exception as failure:  # noqa: BLE001 - any failure means this connection is not usable
            self._discard()
            return failure

    def close(self) -> None:
        """Close the connection now (the next check opens a new one)."""
        with self._lock:
            self._discard()

    def _discard(self) -> None:
        connection, self._connection = self._connection, None
        close_quietly(connection, "the readiness check's database connection")


def database_check(alias: str = "default") -> DatabaseCheck:
    """The readiness check of database ``alias``, on a connection of its own."""
    return DatabaseCheck(lambda: connections.create_connection(alias))


def redis_check(client: Any) -> Check:
    """A PING over ``client`` (the process's shared client: its pooled connection is reused)."""

    def redis_ok() -> bool:
        try:
            return bool(client.ping())
        except Exception:  # noqa: BLE001 - any failure means not ready
            logger.warning("readiness: redis unreachable")
            return False

    return redis_ok


def readiness_probe(*, database: Check, redis_client: Any, clock: Clock | None = None) -> ReadinessProbe:
    """The database always; Redis when configured (None: the embedded default)."""
    checks: dict[str, Check] = {"database": database}
    if redis_client is not None:
        checks["redis"] = redis_check(redis_client)
    return ReadinessProbe(checks, clock=SystemClock() if clock is None else clock)


_probe = ReadinessProbe({"database": database_check()}, clock=SystemClock())  # until install_readiness


def install_readiness(probe: ReadinessProbe) -> ReadinessProbe:
    """Serve ``probe`` from now on; returns the one it replaces."""
    global _probe
    previous, _probe = _probe, probe
    return previous


def readiness_close() -> None:
    """Close the served probe's database connection (before a test database is dropped)."""
    _probe.close()


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
