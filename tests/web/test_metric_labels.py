"""No client input adds a Prometheus series: methods a client invents and paths that
match nothing are counted under fixed label values ("other", "unmatched", the
URLconf's view name), so the series on /metrics stay bounded by the configuration."""

from __future__ import annotations

import random
import string

from django.test import Client
from prometheus_client import REGISTRY

from orchestration.observability.metrics import HTTP_METHODS, OTHER_METHOD
from orchestration.plan import Endpoint
from orchestration.templates import compile_template
from tests.web.conftest import Gateway, auth, make_plan

Series = frozenset[tuple[str, frozenset[tuple[str, str]]]]


def _series() -> Series:
    """Every series of the families clients reach: ours and django-prometheus's HTTP ones."""
    return frozenset(
        (sample.name, frozenset(sample.labels.items()))
        for family in REGISTRY.collect()
        if family.name.startswith(("gateway_", "django_http_"))
        for sample in family.samples
    )


def _words(rng: random.Random, alphabet: str, count: int) -> list[str]:
    return ["".join(rng.choices(alphabet, k=rng.randint(3, 16))) for _ in range(count)]


def _send(client: Client, methods: list[str], paths: list[str]) -> set[int]:
    """Each method at a configured path and at a path of nothing; each path with GET and an invented method."""
    statuses = set()
    for method, path in zip(methods, paths, strict=True):
        for sent_method, sent_path in ((method, "/v1/items/7"), (method, path), ("GET", path), (method, "/v1" + path)):
            statuses.add(client.generic(sent_method, sent_path, **auth("alice")).status_code)
    return statuses


def test_invented_methods_and_paths_add_no_series(gateway: Gateway) -> None:
    items = Endpoint("items", "GET", "/items/{id}", (), compile_template({"ok": True}))
    gateway.install(make_plan(items))
    rng = random.Random(20240611)
    client = Client()
    assert client.get("/v1/items/7").status_code == 401  # counted under its endpoint's name
    first_statuses = _send(client, _words(rng, string.ascii_uppercase, 5), ["/" + w for w in _words(rng, "abcxyz", 5)])
    before = _series()

    methods = _words(rng, string.ascii_uppercase + string.digits, 50)
    paths = ["/" + "/".join(_words(rng, string.ascii_lowercase + "-_.~", 2)) for _ in range(50)]
    statuses = _send(client, methods, paths)

    assert statuses == first_statuses == {404, 405}
    after = _series()
    assert after - before == frozenset()  # 200 invented requests, not one new series
    methods_seen = {value for _, labels in after for name, value in labels if name == "method"}
    assert methods_seen <= HTTP_METHODS | {OTHER_METHOD}
    assert OTHER_METHOD in methods_seen
    endpoints_seen = {value for _, labels in after for name, value in labels if name == "endpoint"}
    assert {"items", "unmatched"} <= endpoints_seen
    assert not endpoints_seen & {p.split("/")[1] for p in paths}
