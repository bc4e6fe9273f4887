"""The configuration poller's database connection, kept open across polls.

Every gunicorn worker's poller reads the configuration version once a second. On
Django's connection of its thread (a greenlet under gevent), closed after each poll
since nothing else closes it (CONN_MAX_AGE=0 is for requests), that was a new
PostgreSQL connection, and a new backend process, per second per worker. Here the
poller's work runs on one connection of its own, kept between polls like /readyz's
(orchestration/web/health.py), and replaced when it fails: work that fails with a
database error on a kept connection (the server restarted, an idle timeout,
``pg_terminate_backend``) runs once more on a new one, so a restart costs no poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import Error as DatabaseError
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

T = TypeVar("T")


class KeptConnection:
    """Runs work with ``connections[alias]`` of the calling thread being one kept connection."""

    def __init__(self, alias: str = "default", connect: Callable[[], BaseDatabaseWrapper] | None = None) -> None:
        self._alias = alias
        self._connect = connect or (lambda: connections.create_connection(alias))
        self._connection: BaseDatabaseWrapper | None = None
        self._lock = threading.Lock()  # one run at a time: the poller's, or a close

    def run(self, work: Callable[[], T]) -> T:
        """``work()`` on the kept connection; a database error on a kept (not a new) one
        is retried once on a new one. Raises what the last try raised."""
        with self._lock:
            reused = self._connection is not None
            try:
                return self._run_once(work)
            except DatabaseError:
                if not reused:
                    raise
                logger.info("the kept database connection failed; once more on a new one", exc_info=True)
                return self._run_once(work)

    def close(self) -> None:
        """Close the connection now (the next run opens a new one)."""
        with self._lock:
            self._discard()

    def _run_once(self, work: Callable[[], T]) -> T:
        if self._connection is None:
            self._connection = self._connect()
            self._connection.inc_thread_sharing()  # close() may come from another thread (shutdown, tests)
        connection = self._connection
        connections[self._alias] = connection  # this thread's ORM queries go over it
        try:
            result = work()
        except BaseException:
            self._discard()  # whatever failed, the next run starts on a clean connection
            raise
        if connection.in_atomic_block or connection.needs_rollback:  # work left a transaction open
            self._discard()
        return result

    def _discard(self) -> None:
        connection, self._connection = self._connection, None
        close_quietly(connection, "the kept database connection")


def close_quietly(connection: BaseDatabaseWrapper | None, what: str) -> None:
    """Close a connection being dropped; one already broken may fail to close, which is fine."""
    if connection is not None:
        try:
            connection.close()
        except Exception:  # already broken: dropping it is all that is left
            logger.debug("closing %s failed", what, exc_info=True)
