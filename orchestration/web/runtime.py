"""The serving runtime: a plan and everything built from it, kept fresh.

Plans are compiled, not consulted: the router, the executor with its
per-service clients, and the authenticator are built once per configuration
version. ``RuntimeHolder.current`` looks at the version at most every
``poll_s`` seconds (one cache read, through Redis when configured), so a change
saved in the admin or imported reaches every worker within about a second and
the request path makes no database query.
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
    return Router(config.plan), build_authenticator(config.plan.layer.auth, api_keys=config.api_keys)


class RuntimeHolder:
    """Holds the current runtime; rebuilds it when the config version moves."""

    def __init__(
        self,
        *,
        load: Callable[[], LoadedConfig],
        read_version: Callable[[], str | None],
        build: RuntimeBuilder,
        poll_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self._read_version, self._build = load, read_version, build
        self._poll_s, self._clock = poll_s, clock
        self._runtime: GatewayRuntime | None = None
        self._next_check = 0.0
        self._lock = threading.Lock()

    def current(self) -> GatewayRuntime:
        runtime = self._runtime
        now = self._clock()
        if runtime is not None and now < self._next_check:
            return runtime
        with self._lock:
            if self._runtime is not None and self._clock() < self._next_check:
                return self._runtime
            self._next_check = now + self._poll_s
            version = self._read_version()
            if self._runtime is None or (version is not None and version != self._runtime.plan.version):
                retired, self._runtime = self._runtime, self._rebuild()
                _retire_later(retired)
            return self._runtime

    def invalidate(self) -> None:
        """Forget the runtime; the next request rebuilds it (tests, admin in-process)."""
        with self._lock:
            self._runtime = None
            self._next_check = 0.0

    def _rebuild(self) -> GatewayRuntime:
        config = self._load()
        runtime = self._build(config)
        logger.info("serving configuration version %s (%d endpoints)", config.plan.version, len(config.plan.endpoints))
        return runtime


RETIRE_AFTER_S = 60.0


def _retire_later(runtime: GatewayRuntime | None) -> None:
    """Close a replaced runtime's downstream connections once requests still
    running on it are surely done (no request outlives the gunicorn timeout)."""
    if runtime is None or runtime.pool is None:
        return
    timer = threading.Timer(RETIRE_AFTER_S, runtime.pool.close)
    timer.daemon = True
    timer.start()
