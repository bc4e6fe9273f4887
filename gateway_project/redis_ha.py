"""Redis high availability with Sentinel (contract section 9).

``REDIS_SENTINELS`` (``host:port,host:port``) with ``REDIS_SENTINEL_MASTER`` (the name the
sentinels monitor) instead of ``REDIS_URL``: every client asks the sentinels where the
primary is, and asks again when a connection to it fails, so after a failover breakers,
rate limits and the response cache are shared through the new primary. Until the
sentinels have promoted a replica, Redis counts as down: limits fail open, the cache is
bypassed, breakers go per process, no client gets a 5xx (the same rules as REDIS_URL).

Read by gateway_project/settings.py (the Django cache, Celery's broker options) and
gateway_project/wiring.py (the gateway's own client); nothing else builds a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Short timeouts: an unreachable Redis (or sentinel) must degrade a request, not stall it.
SOCKET_TIMEOUT_S = 0.25


def sentinel_kwargs() -> dict[str, Any]:
    """How each sentinel is asked: short timeouts and no retry of its own. redis-py's default
    retries a failed sentinel connection three times with backoff of up to seconds, so with
    every sentinel unreachable one lookup of the primary took 7 s a sentinel (two: ~15 s) in
    spite of the 0.25 s timeouts; the next sentinel, and the caller's own retry, are the retries."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "socket_connect_timeout": SOCKET_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "retry": Retry(NoBackoff(), 0),
    }


class SentinelSettingError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SentinelSettings:
    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    password: str | None = None

    def django_cache(self) -> dict[str, Any]:
        """django-redis's Sentinel form of the ``default`` cache."""
        return {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://{self.master}/{self.db}",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "SENTINELS": list(self.sentinels),
                "SENTINEL_KWARGS": sentinel_kwargs(),
                "SOCKET_CONNECT_TIMEOUT": SOCKET_TIMEOUT_S,
                "SOCKET_TIMEOUT": SOCKET_TIMEOUT_S,
                **({"PASSWORD": self.password} if self.password else {}),
                "IGNORE_EXCEPTIONS": True,
            },
            "KEY_PREFIX": "gw",
        }

    def celery_transport_options(self) -> dict[str, Any]:
        """For a ``sentinel://`` CELERY_BROKER_URL: which primary the sentinels are asked for."""
        return {"master_name": self.master, "sentinel_kwargs": sentinel_kwargs()}

    def client(self, **connection_kwargs: Any) -> Any:
        """A redis-py client of the current primary (re-discovered after a failed connection)."""
        from redis.sentinel import Sentinel

        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(self.sentinels),
            sentinel_kwargs=sentinel_kwargs(),
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
        )
        return sentinel.master_for(  # type: ignore[no-untyped-call]
            self.master, db=self.db, password=self.password, **connection_kwargs
        )


def parse(
    sentinels: str | None, master: str | None, *, db: int = 0, password: str | None = None
) -> SentinelSettings | None:
    """None when ``sentinels`` is unset; a located error for a malformed value."""
    if not sentinels or not sentinels.strip():
        if master:
            raise SentinelSettingError("REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is not")
        return None
    if not master or not master.strip():
        raise SentinelSettingError("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER (the name the sentinels monitor)")
    addresses = []
    for position, item in enumerate(sentinels.split(","), start=1):
        host, sep, port = item.strip().rpartition(":")
        host = host.strip("[]")  # [::1]:26379
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SentinelSettingError(f"REDIS_SENTINELS entry {position} ({item.strip()!r}) must be host:port")
        addresses.append((host, int(port)))
    if db < 0:
        raise SentinelSettingError(f"REDIS_SENTINEL_DB must be >= 0, not {db}")
    return SentinelSettings(tuple(addresses), master.strip(), db, password or None)
