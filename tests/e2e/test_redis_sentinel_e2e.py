"""Contract section 9, Redis high availability, end to end: a real Redis primary, replica
and three sentinels on loopback; two gunicorn gateways configured with REDIS_SENTINELS and
REDIS_SENTINEL_MASTER (no REDIS_URL). Under a steady load the primary is killed; the
sentinels promote the replica; no request gets a 5xx meanwhile, and afterwards rate limits,
the response cache and breakers are shared again, through the new primary."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e import deploy_support as deploy
from tests.e2e.conftest import (
    GatewayServer,
    _create_database,
    _manage_in_one_process,
    gateway_env,
    isolated_targets,
    start_gunicorn,
    wait_until_up,
)
from tests.support.fake_downstream import FakeDownstream
from tests.support.redis_sentinel import MASTER_NAME, SentinelCluster, redis_server_or_skip

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    cluster = SentinelCluster(tmp_path / "redis", redis_server_or_skip())
    cluster.workdir.mkdir()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def start_instances(tmp_path: Path, cluster: SentinelCluster, config_yaml: str, count: int) -> list[GatewayServer]:
    database, _ = isolated_targets("deploy_sentinel", 7)
    servers: list[GatewayServer] = []
    for index in range(count):
        workdir = tmp_path / f"gateway{index}"
        workdir.mkdir()
        multiproc = workdir / "prom"
        multiproc.mkdir()
        env = gateway_env(workdir, multiproc, None, 2, database=database, redis_db=0)
        del env["REDIS_URL"]
        env.update(
            REDIS_SENTINELS=cluster.sentinels_setting,
            REDIS_SENTINEL_MASTER=MASTER_NAME,
            GATEWAY_HEALTH_TOKEN=deploy.HEALTH_TOKEN,
        )
        if index == 0:
            _create_database(env["DATABASE_URL"])
            config = workdir / "gateway.yaml"
            config.write_text(config_yaml, encoding="utf-8")
            _manage_in_one_process(
                env,
                ("migrate", "--noinput", "-v", "0"),
                ("flush", "--noinput", "-v", "0"),
                ("gateway", "import", str(config)),
            )
        servers.append(start_gunicorn(env, workdir / "gunicorn.log", multiproc))
    for server in servers:
        wait_until_up(server)
    return servers


def test_after_a_failover_state_is_shared_again_and_no_request_saw_a_5xx(
    tmp_path: Path, cluster: SentinelCluster, fake_downstream: Callable[..., FakeDownstream]
) -> None:
    work = fake_downstream({"/quick": deploy.sleeping(0.01, "q"), "*": (200, {"value": "c"})})
    fragile = fake_downstream({"/broken": (500, {"error": "broken"})})
    servers = start_instances(tmp_path, cluster, deploy.config_yaml(work.url, fragile.url), 2)
    urls = [server.base_url for server in servers]
    try:
        for server in servers:
            assert server.get("/readyz")[0] == 200
        deploy.assert_rate_limit_shared(urls, "one")
        deploy.assert_cache_shared(urls, "one", lambda: work.hits["/cached-one"])
        deploy.assert_breaker_shared(urls, "one", lambda: fragile.hits["/broken"])

        with deploy.SteadyLoad(urls, [f"{deploy.BASE}/quick", f"{deploy.BASE}/cached-one"]) as load:
            time.sleep(1.0)
            cluster.kill_primary()
            killed_at = load.total()
            cluster.wait_failover()
            time.sleep(2.0)  # the load goes on against the new primary
        assert load.failures == [], f"{len(load.failures)} of {load.total()} failed: {load.failures[:5]}"
        assert load.total() - killed_at > 20

        assert cluster.master_port() == cluster.replica_port
        # Redis usable again: each instance's readiness (checked at most once a second) comes back.
        deadline = time.monotonic() + 10
        while any(server.get("/readyz")[0] != 200 for server in servers) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert [server.get("/readyz")[0] for server in servers] == [200, 200]
        deploy.assert_rate_limit_shared(urls, "two")
        deploy.assert_cache_shared(urls, "two", lambda: work.hits["/cached-two"])
        deploy.assert_breaker_shared(urls, "two", lambda: fragile.hits["/broken"])
        # The only Redis left is the new primary: whatever the instances share lives there.
        assert cluster.client(cluster.replica_port).dbsize() > 0
    finally:
        for server in servers:
            server.stop()
