"""The per-service clients of one plan, built once per configuration version.

Breaker state is not owned here: it lives in the store passed in (built once
per process), so it survives a plan rebuild and, with Redis, is shared by
every process. Closing the pool closes the clients' connection pools.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import httpx

from orchestration.clock import Clock, SystemClock
from orchestration.downstream.auth import transport_for
from orchestration.downstream.client import DEFAULT_MAX_BODY_BYTES, DownstreamClient
from orchestration.observer import NullObserver, Observer
from orchestration.plan import Service
from orchestration.resilience.breaker import CircuitBreaker
from orchestration.resilience.breaker_store import BreakerStore, InProcessBreakerStore
from orchestration.resilience.retry_budget import InProcessRetryBudgetStore, RetryBudgetStore

TransportFactory = Callable[[Service], httpx.BaseTransport]


class DownstreamPool:
    def __init__(
        self,
        services: Mapping[str, Service],
        transport_factory: TransportFactory | None = None,
        *,
        breaker_store: BreakerStore | None = None,
        retry_budget_store: RetryBudgetStore | None = None,
        observer: Observer | None = None,
        clock: Clock | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        make_transport = transport_factory or transport_for
        store = breaker_store if breaker_store is not None else InProcessBreakerStore()
        clock = clock or SystemClock()
        watcher = observer or NullObserver()
        budgets = retry_budget_store if retry_budget_store is not None else InProcessRetryBudgetStore()
        self._clients = {
            name: DownstreamClient(
                service,
                transport=make_transport(service),
                breaker=CircuitBreaker(name, service.breaker, store, clock=clock, observer=watcher),
                clock=clock,
                max_body_bytes=max_body_bytes,
                environ=os.environ if environ is None else environ,
                retry_budget=budgets,
            )
            for name, service in services.items()
        }

    def client(self, service: str) -> DownstreamClient:
        return self._clients[service]

    def breaker(self, service: str) -> CircuitBreaker:
        """A service's breaker: ``snapshot()``, ``reset()``, ``force_open()``, ``force_closed()``."""
        return self._clients[service].breaker

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(self._clients)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
