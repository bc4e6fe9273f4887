"""/metrics counts every worker with the production command alone: without
PROMETHEUS_MULTIPROC_DIR, gunicorn's config makes a private directory for the
workers' values, and removes it when the server stops."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import isolated_targets
from tests.e2e.ops_config import ops_config
from tests.e2e.test_serving_e2e import per_worker

pytestmark = pytest.mark.e2e

COUNT = "gateway_request_duration_seconds_count"


def _value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def _served(text: str) -> float | None:
    """cart-view's request count on one scrape."""
    return _value(text, COUNT, endpoint="cart-view", method="GET")


def test_production_command_alone_counts_every_worker(fake_downstream, gateway_server, tmp_path: Path) -> None:
    cart = fake_downstream({"*": (200, {"items": [1, 2]})})
    shipping = fake_downstream({"/estimate": (200, {"cost": 5})})  # unused by cart-view; the config names it
    temp = tmp_path / "tmp"  # where tempfile.mkdtemp makes the private directory
    temp.mkdir()
    database, redis_db = isolated_targets("metrics", 13)
    server = gateway_server(
        ops_config(cart=cart.url, shipping=shipping.url),
        {"TMPDIR": str(temp)},
        workers=2,
        database=database,
        redis_db=redis_db,
        multiproc_dir=False,
    )
    assert "PROMETHEUS_MULTIPROC_DIR" not in server.env
    (private,) = temp.glob("gateway-metrics-*")
    in_private = dataclasses.replace(server, multiproc_dir=private)

    sent = 0  # each request on a fresh connection, until both workers have served some
    while sent < 20 or (len(per_worker(in_private, "gateway_requests_total", endpoint="cart-view")) < 2 and sent < 200):
        assert server.get(f"/v1/cart/{sent}")[0] == 200
        sent += 1
    assert len(per_worker(in_private, "gateway_requests_total", endpoint="cart-view")) == 2
    assert sum(cart.hits.values()) == sent

    for _ in range(8):  # whichever worker answers the scrape, it counts both
        status, _, text = server.get("/metrics")
        assert status == 200
        assert _served(text.decode()) == sent

    server.stop()
    assert not private.exists()
    assert list(temp.glob("gateway-metrics-*")) == []


def test_a_given_directory_is_emptied_at_start_and_kept(fake_downstream, gateway_server, tmp_path: Path) -> None:
    cart = fake_downstream({"*": (200, {"items": []})})
    given = tmp_path / "given-metrics"
    given.mkdir()
    stale = given / "counter_999999.db"  # a previous run's worker: 1000 requests nobody serves now
    values = MmapedDict(str(stale))
    key = mmap_key("gateway_requests", "gateway_requests_total", ["endpoint", "status"], ["cart-view", "200"], "old")
    values.write_value(key, 1000.0, 0.0)
    values.close()
    database, redis_db = isolated_targets("metrics", 13)
    server = gateway_server(
        ops_config(cart=cart.url, shipping="http://127.0.0.1:9"),
        {"PROMETHEUS_MULTIPROC_DIR": str(given)},
        workers=1,
        database=database,
        redis_db=redis_db,
    )
    assert not stale.exists()

    for cart_id in range(3):
        assert server.get(f"/v1/cart/{cart_id}")[0] == 200
    text = server.get("/metrics")[2].decode()
    assert _served(text) == 3
    assert _value(text, "gateway_requests_total", endpoint="cart-view", status="200") == 3

    server.stop()
    assert given.is_dir() and list(given.glob("counter_*.db"))  # the operator's directory and its files stay
