"""Turn settings into the objects the engine and the edge use (the one place).

Stores that must be shared between processes (breaker state, rate-limit
counters, cache entries) use Redis when ``REDIS_URL`` (or ``REDIS_SENTINELS``) is set and in-process
state otherwise. Everything here is built once per process.
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings

from orchestration.web import admission, aggregate
from orchestration.web.runtime import GatewayRuntime, LoadedConfig, RuntimeHolder, build_runtime_parts
from registry.signals import config_changed


@functools.cache
def redis_client() -> Any:
    """One Redis client per process (None without REDIS_URL); short timeouts so
    an outage degrades quickly instead of stalling requests."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    if settings.REDIS_SENTINEL is not None:  # the primary the sentinels name (gateway_project/redis_ha.py)
        return settings.REDIS_SENTINEL.client(retry=Retry(NoBackoff(), 1))
    if not settings.REDIS_URL:
        return None
    # One quick retry (a pooled connection gone stale after a Redis restart); redis-py's
    # default of 10 retries with backoff stalls a request ~4 s when Redis is down.
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=0.25, socket_timeout=0.25, retry=Retry(NoBackoff(), 1)
    )


def _load_config() -> LoadedConfig:
    from registry import compiler, selectors

    with selectors.config_snapshot():  # the plan's version and its API keys agree with its configuration
        return LoadedConfig(plan=compiler.compile_plan(), api_keys=selectors.api_key_subjects_active())


def _read_version() -> str:
    # The database is the version's one source of truth, under every deployment (SQLite
    # or PostgreSQL, with or without Redis); only the poller reads it in a served worker.
    from registry import selectors

    return selectors.config_version_read()


@functools.cache
def breaker_store() -> Any:
    """One per process, outliving plan rebuilds: shared through Redis when configured."""
    from gateway_project.observability import telemetry_observer
    from orchestration.resilience.breaker_store import InProcessBreakerStore
    from orchestration.resilience.redis_breaker_store import RedisBreakerStore

    client = redis_client()
    return InProcessBreakerStore() if client is None else RedisBreakerStore(client, observer=telemetry_observer())


@functools.cache
def retry_budget_store() -> Any:
    """One per process: a host's workers share retry budgets through Redis when configured."""
    import socket

    from gateway_project.observability import telemetry_observer
    from orchestration.resilience.redis_retry_budget import RedisRetryBudgetStore
    from orchestration.resilience.retry_budget import InProcessRetryBudgetStore

    client = redis_client()
    if client is None:
        return InProcessRetryBudgetStore()
    return RedisRetryBudgetStore(client, scope=socket.gethostname(), observer=telemetry_observer())


@functools.cache
def stale_results() -> Any:
    """One per process: optional calls' last good results (``stale_if_error_s``), in
    Redis when configured so every worker serves what any worker last saw."""
    import time

    from gateway_project.observability import telemetry_observer
    from orchestration.edge.cache_store import InProcessCacheStore
    from orchestration.edge.redis_boundary import RedisBoundary
    from orchestration.edge.redis_cache_store import RedisCacheStore
    from orchestration.resilience.stale import StaleResults

    client = redis_client()
    store = InProcessCacheStore() if client is None else RedisCacheStore(client, RedisBoundary(), prefix="gw:stale:")
    return StaleResults(store, wall=time.time, on_store_error=telemetry_observer().on_store_error)


def _build_runtime(config: LoadedConfig) -> GatewayRuntime:
    from gateway_project.observability import telemetry_observer, traced_transport
    from orchestration.downstream.auth import transport_for
    from orchestration.downstream.pool import DownstreamPool
    from orchestration.executor import Executor
    from orchestration.explain import ExplainObserver

    router, authenticator = build_runtime_parts(config)
    observer = ExplainObserver(telemetry_observer())  # explained requests also record their attempts
    pool = DownstreamPool(
        config.plan.services,
        lambda service: traced_transport(transport_for(service)),
        breaker_store=breaker_store(),
        retry_budget_store=retry_budget_store(),
        observer=observer,
        max_body_bytes=settings.GATEWAY["MAX_DOWNSTREAM_BODY_BYTES"],
    )
    executor = Executor(
        config.plan,
        pool,
        observer=observer,
        call_cache=call_cache(),
        max_fan_out=settings.GATEWAY["MAX_FAN_OUT"],
        stale_results=stale_results(),
    )
    return GatewayRuntime(plan=config.plan, router=router, authenticator=authenticator, executor=executor, pool=pool)


@functools.cache
def redis_boundary() -> Any:
    """One outage latch for the edge's Redis stores."""
    from orchestration.edge.redis_boundary import RedisBoundary

    return RedisBoundary()


@functools.cache
def cache_store() -> Any:
    """Cached responses and per-call answers, in one store so one tag purge reaches both."""
    from orchestration.edge.cache_store import InProcessCacheStore
    from orchestration.edge.redis_cache_store import RedisCacheStore

    client = redis_client()
    return InProcessCacheStore() if client is None else RedisCacheStore(client, redis_boundary())


@functools.cache
def call_cache() -> Any:
    """The per-call cache (contract section 10), outliving plan rebuilds."""
    from gateway_project.observability import telemetry_observer
    from orchestration.call_cache import CallCache

    return CallCache(cache_store(), on_store_error=telemetry_observer().on_store_error)


@functools.cache
def runtime_holder() -> RuntimeHolder:
    return RuntimeHolder(
        load=_load_config, read_version=_read_version, build=_build_runtime, poll_s=settings.GATEWAY["CONFIG_POLL_S"]
    )


@functools.cache
def edge() -> Any:
    """Rate limiter, response cache and client-IP rules; Redis-backed when configured."""
    from gateway_project.observability import telemetry_observer
    from orchestration.edge.cache import ResponseCache
    from orchestration.edge.client_ip import ClientIpResolver
    from orchestration.edge.edge_metrics import PrometheusEdgeMetrics
    from orchestration.edge.rate_store import InProcessRateStore
    from orchestration.edge.ratelimit import RateLimiter
    from orchestration.edge.redis_rate_store import RedisRateStore
    from orchestration.web.edge import Edge

    metrics = PrometheusEdgeMetrics(on_store_error=telemetry_observer().on_store_error)
    client, boundary = redis_client(), redis_boundary()
    rate_store = InProcessRateStore() if client is None else RedisRateStore(client, boundary)
    return Edge(
        limiter=RateLimiter(rate_store, metrics=metrics),
        cache=ResponseCache(cache_store(), metrics=metrics),
        client_ips=ClientIpResolver(settings.GATEWAY["TRUSTED_PROXIES"]),
        plan=lambda: runtime_holder().current().plan,
        cdn=cdn_purger(),
    )


def cdn_purger() -> Any:
    """The CDN purge client when ``GATEWAY_CDN_PURGE_URL`` is set (contract section 8), else None."""
    from orchestration.edge.cdn import CdnPurger

    url = settings.GATEWAY["CDN_PURGE_URL"]
    return CdnPurger(url, settings.GATEWAY["CDN_PURGE_TOKEN"]) if url else None


_adaptive_limits: list[admission.AdaptiveLimit] = []  # the one install() started, while it runs


def stop_adaptive_limit() -> None:
    """Stop the adaptive admission limit ``install`` started, if any."""
    while _adaptive_limits:
        _adaptive_limits.pop().stop()


def stop_background_threads() -> None:
    """Stop the threads an in-process gateway left running: the adaptive admission limit
    and the recent-stats flush. A worker never needs to (they end with the process); the
    tests do, before pytest closes the streams their log lines go to."""
    from gateway_project.observability import recent_stats

    stop_adaptive_limit()
    if recent_stats.cache_info().currsize:  # made: its flush thread runs
        recent_stats().stop_background_flush()


def install() -> None:
    from orchestration.observability import access_log, metrics
    from orchestration.web import health
    from orchestration.web.edge import install_edge

    metrics.set_enabled(settings.GATEWAY["METRICS"])
    access_log.set_enabled(settings.GATEWAY["ACCESS_LOG"])
    aggregate.install_runtime_source(lambda: runtime_holder().current())
    config_changed.connect(_look_at_the_version_now, dispatch_uid="gateway.wiring.config_changed")
    limits = settings.GATEWAY
    gate, adaptive = admission.gate_from_settings(limits["MAX_IN_FLIGHT"], limits["ADMISSION_WAIT_MS"] / 1000)
    aggregate.install_admission_gate(gate)
    stop_adaptive_limit()  # the one an earlier install started adjusts a gate no longer served
    if adaptive is not None:
        adaptive.start()
        _adaptive_limits.append(adaptive)
    install_edge(edge())
    from orchestration.web.explain_header import install_explain_token

    install_explain_token(settings.GATEWAY["EXPLAIN_TOKEN"])
    from gateway_project.observability import recent_stats
    from orchestration.web.ops_access import install_request_stats

    # Per-endpoint figures of /console/spec/; looked up per request, so the stats object (and
    # its flush thread) is made in the worker on first use, never in a process that forks.
    install_request_stats(lambda **answer: recent_stats().record_request(**answer))
    # /readyz checks at most once a second, over a database connection of its own (kept
    # open between checks) and this process's Redis client.
    health.install_readiness(health.readiness_probe(database=health.database_check(), redis_client=redis_client()))


def _look_at_the_version_now(**_: Any) -> None:
    """A change committed in this process (admin, import): this worker need not wait for its poll."""
    runtime_holder().expire()


def warm_up() -> None:
    """Build this process's runtime now (gunicorn's ``post_worker_init``): the URLconf,
    the compiled plan, the downstream clients and the edge, so the first requests
    after a (re)start do not pay for them while clients wait and attempt timeouts
    run. A failure is logged, not raised: the worker then builds it on first use.
    Then start the worker's configuration poller, which keeps the runtime fresh."""
    import logging

    from django.db import connections

    try:
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 - imports gateway_project.urls, which calls install()
        runtime_holder().current()
        edge()
    except Exception:
        logging.getLogger(__name__).exception("warm-up failed; the runtime is built on the first request")
    finally:
        connections.close_all()  # outside a request nobody else closes it (CONN_MAX_AGE=0 is per request)
    # From now on the version is read off the request path, by one poller per worker, over
    # one database connection it keeps between polls (and replaces when it fails).
    from orchestration.web.kept_connection import KeptConnection

    runtime_holder().start_polling(run=KeptConnection().run)
