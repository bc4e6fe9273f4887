"""REDIS_SENTINELS / REDIS_SENTINEL_MASTER parsing and what they configure (gateway_project/redis_ha.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
import redis
from django_redis.pool import SentinelConnectionFactory
from redis.backoff import NoBackoff
from redis.retry import Retry

from gateway_project import redis_ha
from tests.support.raw_server import serve_connections


def test_unset_means_no_sentinel() -> None:
    assert redis_ha.parse(None, None) is None
    assert redis_ha.parse("  ", None) is None


def test_addresses_master_and_db_are_read() -> None:
    settings = redis_ha.parse("10.0.0.1:26379, sentinel-b:26380,[::1]:26381", "gateway", db=2)
    assert settings is not None
    assert settings.sentinels == (("10.0.0.1", 26379), ("sentinel-b", 26380), ("::1", 26381))
    assert (settings.master, settings.db) == ("gateway", 2)


@pytest.mark.parametrize(
    ("sentinels", "master", "message"),
    [
        ("h:26379", None, "REDIS_SENTINELS needs REDIS_SENTINEL_MASTER"),
        (None, "gateway", "REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is not"),
        ("h:26379,h2", "gateway", "REDIS_SENTINELS entry 2 ('h2') must be host:port"),
        ("h:0", "gateway", "REDIS_SENTINELS entry 1 ('h:0') must be host:port"),
        (":26379", "gateway", "REDIS_SENTINELS entry 1 (':26379') must be host:port"),
    ],
)
def test_a_bad_value_is_a_located_error(sentinels: str | None, master: str | None, message: str) -> None:
    with pytest.raises(redis_ha.SentinelSettingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        redis_ha.parse(sentinels, master)


def test_the_django_cache_and_celery_use_the_sentinels() -> None:
    settings = redis_ha.parse("h:26379", "gateway", db=1)
    assert settings is not None
    cache = settings.django_cache()
    assert cache["LOCATION"] == "redis://gateway/1"
    assert cache["OPTIONS"]["SENTINELS"] == [("h", 26379)]
    assert cache["OPTIONS"]["CLIENT_CLASS"] == "django_redis.client.SentinelClient"
    assert cache["OPTIONS"]["IGNORE_EXCEPTIONS"] is True
    assert settings.celery_transport_options()["master_name"] == "gateway"


def test_the_client_asks_the_sentinels_for_the_named_primary() -> None:
    settings = redis_ha.parse("127.0.0.1:1", "gateway")
    assert settings is not None
    client = settings.client()
    pool = client.connection_pool
    assert pool.service_name == "gateway"
    assert [s.connection_pool.connection_kwargs["port"] for s in pool.sentinel_manager.sentinels] == [1]


class _DeadSentinel:
    """A sentinel that accepts a connection and closes it unanswered, counting connections."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self._lock = threading.Lock()
        serve_connections(self.server, self._hang_up)

    def _hang_up(self, conn: socket.socket) -> None:
        with self._lock:
            self.connections += 1
        conn.close()


@pytest.fixture
def dead_sentinels() -> Iterator[tuple[_DeadSentinel, _DeadSentinel]]:
    pair = (_DeadSentinel(), _DeadSentinel())
    yield pair
    for sentinel in pair:
        sentinel.server.close()


def _addresses(sentinels: tuple[_DeadSentinel, _DeadSentinel]) -> str:
    return ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in sentinels)


def test_with_every_sentinel_down_the_gateways_client_asks_each_once_per_try(
    dead_sentinels: tuple[_DeadSentinel, _DeadSentinel],
) -> None:
    # redis-py's own default retried each sentinel three times with backoff: ~7 s a sentinel,
    # ~15 s for one command with two sentinels down, however short the timeouts.
    settings = redis_ha.parse(_addresses(dead_sentinels), "gateway")
    assert settings is not None
    client = settings.client(retry=Retry(NoBackoff(), 1))  # type: ignore[no-untyped-call]  # as gateway_project.wiring builds it
    with pytest.raises(redis.exceptions.ConnectionError, match="No master found for 'gateway'"):
        client.ping()
    assert [sentinel.connections for sentinel in dead_sentinels] == [2, 2]  # the command and its one retry


def test_with_every_sentinel_down_the_django_cache_and_celery_ask_each_once(
    dead_sentinels: tuple[_DeadSentinel, _DeadSentinel],
) -> None:
    settings = redis_ha.parse(_addresses(dead_sentinels), "gateway")
    assert settings is not None
    factory = SentinelConnectionFactory(dict(settings.django_cache()["OPTIONS"]))
    with pytest.raises(redis.exceptions.ConnectionError):
        factory._sentinel.discover_master("gateway")  # what django-redis's pool asks before connecting
    assert [sentinel.connections for sentinel in dead_sentinels] == [1, 1]
    celery = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]  # as kombu's sentinel transport builds it
        settings.sentinels, sentinel_kwargs=settings.celery_transport_options()["sentinel_kwargs"]
    )
    with pytest.raises(redis.exceptions.ConnectionError):
        celery.discover_master("gateway")
    assert [sentinel.connections for sentinel in dead_sentinels] == [2, 2]


def _settings_in_a_process(**env: str) -> subprocess.CompletedProcess[str]:
    """gateway_project.settings read afresh with ``env`` (settings are read once per process)."""
    script = (
        "import json, django\nfrom django.conf import settings\ndjango.setup()\n"
        "print(json.dumps({'cache': settings.CACHES['default'], "
        "'celery': getattr(settings, 'CELERY_BROKER_TRANSPORT_OPTIONS', None)}, default=repr))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "CELERY_"))}
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**base, "DJANGO_SETTINGS_MODULE": "gateway_project.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_use_the_sentinels_for_the_django_cache_and_a_sentinel_celery_broker() -> None:
    result = _settings_in_a_process(
        REDIS_SENTINELS="s1:26379,s2:26379",
        REDIS_SENTINEL_MASTER="gateway",
        CELERY_BROKER_URL="sentinel://s1:26379;sentinel://s2:26379",
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["cache"]["LOCATION"] == "redis://gateway/0"
    assert answer["cache"]["OPTIONS"]["SENTINELS"] == [["s1", 26379], ["s2", 26379]]
    assert answer["celery"]["master_name"] == "gateway"


def test_settings_refuse_redis_url_and_sentinels_together_and_name_a_bad_entry() -> None:
    both = _settings_in_a_process(REDIS_URL="redis://h/0", REDIS_SENTINELS="s1:26379", REDIS_SENTINEL_MASTER="gw")
    assert both.returncode != 0 and "set REDIS_URL or REDIS_SENTINELS, not both" in both.stderr
    bad = _settings_in_a_process(REDIS_SENTINELS="s1", REDIS_SENTINEL_MASTER="gw")
    assert bad.returncode != 0 and "REDIS_SENTINELS entry 1 ('s1') must be host:port" in bad.stderr
