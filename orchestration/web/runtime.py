"""The serving runtime: a plan and everything built from it, kept fresh.

Plans are compiled, not consulted: the router, the executor with its
per-service clients, and the authenticator are built once per configuration
version. The version's source of truth is the database, read off the request
path: in a gunicorn worker a poller thread (a greenlet under gevent) reads it
every ``poll_s`` seconds and, when it moved, builds a new runtime and swaps it
in, so a request only reads a reference. Where no poller runs (tests,
``runserver``, a shell) ``current`` looks itself, at most once per ``poll_s``.
docs/adr/0002-compiled-versioned-plans.md says why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestration.edge.client_auth import Authenticator, build_authenticator
from orchestration.plan import Plan
from orchestration.routing import Router

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """What the registry gives the runtime for one version."""

    plan: Plan
    api_keys: Mapping[str, str]  # SHA-256 digest of an active key -> its subject


@dataclass(slots=True)
class GatewayRuntime:
    plan: Plan
    router: Router
    authenticator: Authenticator
    executor: Any
    pool: Any


RuntimeBuilder = Callable[[LoadedConfig], GatewayRuntime]


def build_runtime_parts(config: LoadedConfig) -> tuple[Router, Authenticator]:
    auth = config.plan.layer.auth
    sessions = None
    if "session" in auth.kinds:
        from orchestration.web.session_auth import DjangoSessions  # Django's sessions, only when the layer uses them

        sessions = DjangoSessions()
    return Router(config.plan), build_authenticator(auth, api_keys=config.api_keys, sessions=sessions)


# Runs one poll's work (``RuntimeHolder.refresh``) and returns what it returned.
PollRunner = Callable[[Callable[[], bool]], bool]

MIN_POLL_INTERVAL_S = 0.1  # GATEWAY_CONFIG_POLL_S=0 must not make the poller spin on the database


class RuntimeHolder:
    """Holds the current runtime; rebuilds it when the config version moves.

    The version that counts is the one *read* before a rebuild, not the one
    the loaded plan carries: if a change lands between the read and the load,
    the next poll rebuilds once more, and no disagreement between the two can
    make every poll rebuild.
    """

    def __init__(
        self,
        *,
        load: Callable[[], LoadedConfig],
        read_version: Callable[[], str],
        build: RuntimeBuilder,
        poll_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self._read_version, self._build = load, read_version, build
        self._poll_s, self._clock = poll_s, clock
        self._runtime: GatewayRuntime | None = None
        self._version_read: str | None = None  # read just before the current runtime was loaded
        self._next_check = 0.0
        # Whether ``current`` looks at the version itself: until a poller runs.
        self.checks_on_request = True
        self._poller: threading.Thread | None = None
        self._failures = 0  # polls failed in a row
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def current(self) -> GatewayRuntime:
        runtime = self._runtime
        if runtime is not None and not self._due():
            return runtime
        with self._lock:
            if self._runtime is not None and not self._due():
                return self._runtime
            try:
                self._refresh()
            except Exception:
                if self._runtime is None:
                    raise  # nothing to serve
                self._note_failure()
            else:
                self._note_success()
            finally:
                self._next_check = self._clock() + self._poll_s
            assert self._runtime is not None  # built, or the failure was raised
            return self._runtime

    def refresh(self) -> bool:
        """Read the version once; rebuild and swap when it moved (or nothing is built
        yet). True when it rebuilt. Raises what the read, load or build raised, and
        the current runtime stays."""
        with self._lock:
            return self._refresh()

    def expire(self) -> None:
        """Look at the version now, not at the next poll (a change was just made here)."""
        self._next_check = 0.0
        self._wake.set()

    def invalidate(self) -> None:
        """Forget the runtime; the next request rebuilds it (tests, admin in-process)."""
        with self._lock:
            self._runtime, self._version_read = None, None
            self._next_check = 0.0

    def start_polling(self, *, run: PollRunner) -> None:
        """Poll in a daemon thread (a greenlet in a gevent-patched worker) from now on;
        each poll's work goes through ``run`` (in a worker: on the poller's kept
        database connection, orchestration/web/kept_connection.py)."""
        if self._poller is not None:
            return
        self.checks_on_request = False
        self._poller = threading.Thread(target=self.poll_forever, args=(run,), name="config-poller", daemon=True)
        self._poller.start()

    def poll_forever(self, run: PollRunner, wait: Callable[[float], object] | None = None) -> None:
        """The poller's loop: a poll, then ``wait`` up to ``poll_s`` (``expire`` ends the wait early)."""
        self.checks_on_request = False
        wait = self._wake.wait if wait is None else wait
        while True:
            self._wake.clear()
            self.poll(run)
            wait(max(self._poll_s, MIN_POLL_INTERVAL_S))

    def poll(self, run: PollRunner) -> None:
        """One poll through ``run`` that never raises: a failure (database down) is
        logged and the current runtime keeps serving."""
        try:
            run(self.refresh)
        except Exception:  # noqa: BLE001 - whatever failed (database down, a bad build), the current plan serves on
            self._note_failure()
        else:
            self._note_success()

    def _due(self) -> bool:
        return self.checks_on_request and self._clock() >= self._next_check

    def _refresh(self) -> bool:
        version = self._read_version()
        if self._runtime is not None and version == self._version_read:
            return False
        config = self._load()
        runtime = self._build(config)
        retired, self._runtime, self._version_read = self._runtime, runtime, version
        logger.info("serving configuration version %s (%d endpoints)", config.plan.version, len(config.plan.endpoints))
        _retire_later(retired)
        return True

    def _note_success(self) -> None:
        if self._failures:
            logger.info("configuration poll works again after %d failures", self._failures)
        self._failures = 0

    def _note_failure(self) -> None:
        """The first failure of a streak with its traceback, the next ones in one line."""
        self._failures += 1
        serving = None if self._runtime is None else self._runtime.plan.version
        if self._failures == 1:
            logger.exception("configuration poll failed; still serving version %s", serving)
        else:
            logger.warning("configuration poll failed (%d in a row); still serving version %s", self._failures, serving)


RETIRE_AFTER_S = 60.0


def _retire_later(runtime: GatewayRuntime | None) -> None:
    """Close a replaced runtime's downstream connections once requests still
    running on it are surely done (no request outlives the gunicorn timeout)."""
    if runtime is None or runtime.pool is None:
        return
    timer = threading.Timer(RETIRE_AFTER_S, runtime.pool.close)
    timer.daemon = True
    timer.start()
