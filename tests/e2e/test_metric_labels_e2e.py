"""Issue 11 item 2 through gunicorn: no client input adds a series to /metrics.

Two gevent workers with the production config file; invented methods and paths that
match nothing go out over real HTTP, each on a fresh connection, and the set of series
one scrape shows (every worker's values, from the multiprocess directory) is the same
before and after. tests/web/test_metric_labels.py shows the fixed labels they fall under.
"""

from __future__ import annotations

import json
import random
import string

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import GatewayServer, isolated_targets, wait_until_every_worker_serves
from tests.e2e.ops_config import ops_config
from tests.e2e.test_serving_e2e import per_worker

pytestmark = pytest.mark.e2e

Series = frozenset[tuple[str, frozenset[tuple[str, str]]]]
# gunicorn itself refuses methods with lower-case letters or '#', or outside 3..20
# characters (400 before the app): these reach the gateway.
METHOD_ALPHABET = string.ascii_uppercase + string.digits + "-_"


def _series(server: GatewayServer) -> Series:
    status, _, text = server.get("/metrics")
    assert status == 200
    return frozenset(
        (sample.name, frozenset(sample.labels.items()))
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    )


def _words(rng: random.Random, alphabet: str, count: int) -> list[str]:
    return ["".join(rng.choices(alphabet, k=rng.randint(3, 16))) for _ in range(count)]


def _send(server: GatewayServer, methods: list[str], paths: list[str]) -> set[tuple[int, str]]:
    """Each method at a configured path and at a path of nothing; each path with GET, under
    the layer's base path and outside it. The (status, error code) pairs seen."""
    seen = set()
    for method, path in zip(methods, paths, strict=True):
        for sent_method, sent_path in ((method, "/v1/cart/7"), (method, path), ("GET", path), ("GET", "/v1" + path)):
            status, headers, body = server.request(sent_method, sent_path)
            assert headers["Content-Type"].startswith("application/json"), (sent_method, sent_path, body[:200])
            seen.add((status, json.loads(body)["error"]["code"]))
    return seen


def test_invented_methods_and_paths_add_no_series_through_gunicorn(fake_downstream, gateway_server) -> None:
    cart = fake_downstream({"*": (200, {"items": [1]})})
    database, redis_db = isolated_targets("metrics", 13)
    server = gateway_server(
        ops_config(cart=cart.url, shipping="http://127.0.0.1:9"), workers=2, database=database, redis_db=redis_db
    )
    wait_until_every_worker_serves(server, workers=2)  # the test shows both workers' series
    rng = random.Random(20240612)
    assert server.get("/v1/cart/7")[0] == 200
    # What a first wave of invented requests adds (the fixed labels' first use), once.
    first = _send(server, _words(rng, METHOD_ALPHABET, 4), ["/" + w for w in _words(rng, "abcxyz", 4)])
    _series(server)  # a scrape counts itself after it answered: the next one shows its series
    answered_before = per_worker(server, "gateway_requests_total")
    before = _series(server)

    methods = _words(rng, METHOD_ALPHABET, 30)
    paths = ["/" + "/".join(_words(rng, string.ascii_lowercase + "-_.~", 2)) for _ in range(30)]
    seen = _send(server, methods, paths)
    after = _series(server)

    assert seen == first == {(404, "NOT_FOUND"), (405, "METHOD_NOT_ALLOWED")}
    answered = per_worker(server, "gateway_requests_total")
    assert len([pid for pid, count in answered.items() if count > answered_before.get(pid, 0.0)]) == 2  # both workers
    assert after - before == frozenset()  # 120 invented requests, not one new series
    label_values = {value for _, labels in after for value in dict(labels).values()}
    assert not label_values & {*methods, *(p.split("/")[1] for p in paths)}
    assert cart.hits == {"/carts/7": 1}  # none of them reached a downstream
