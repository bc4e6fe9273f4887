"""Export writes the opt-in fields of sections 7 and 10 only when they are set, so an
existing configuration exports byte for byte as before those fields existed."""

from __future__ import annotations

from typing import Any

import pytest

from registry.config.dumping import config_dump
from registry.config.schema import DOCUMENT
from registry.config.structure import normalize
from tests.registry.test_command import run
from tests.registry.test_composition_config import cart_page

OPT_IN_KEYS = (
    "dedupe",
    "deadline_header",
    "min_calls",
    "failure_rate",
    "budget_percent",
    "budget_min_per_s",
    "when",
    "for_each",
    "max_parallel",
)


@pytest.mark.django_db
def test_a_configuration_without_the_new_fields_exports_none_of_them(document: dict[str, Any], write_yaml):
    assert run("import", str(write_yaml(document)))[0] == 0
    code, exported, _ = run("export")
    assert code == 0
    for key in OPT_IN_KEYS:
        assert f"{key}:" not in exported, key
    assert exported == config_dump(normalize(document, DOCUMENT))


@pytest.mark.django_db
def test_dedupe_false_is_the_default_and_is_not_written(document: dict[str, Any], write_yaml):
    document["services"]["inventory"]["dedupe"] = False
    document["services"]["cart"]["dedupe"] = True
    assert run("import", str(write_yaml(document)))[0] == 0
    exported = run("export")[1]
    assert exported.count("dedupe:") == 1 and "dedupe: true" in exported
    # the canonical form of the written document is the export: the round trip is exact
    assert exported == config_dump(normalize(document, DOCUMENT))
    assert run("import", str(write_yaml(exported, "again.yaml")))[0] == 0
    assert run("export")[1] == exported


@pytest.mark.django_db
def test_set_fields_are_written_and_round_trip(document: dict[str, Any], write_yaml):
    service = document["services"]["inventory"]
    service["deadline_header"] = "X-Request-Deadline-Ms"
    service.setdefault("breaker", {}).update(min_calls=20, failure_rate=50)
    service.setdefault("retry", {}).update(max_retries=2, budget_percent=20, budget_min_per_s=3)
    document["endpoints"].append(cart_page())
    assert run("import", str(write_yaml(document)))[0] == 0
    exported = run("export")[1]
    for key in OPT_IN_KEYS[1:]:
        assert f"{key}:" in exported, key
    assert exported == config_dump(normalize(document, DOCUMENT))
    assert run("import", str(write_yaml(exported, "again.yaml")))[0] == 0
    assert run("export")[1] == exported


@pytest.mark.django_db
def test_a_call_cache_without_tags_imports_compiles_and_round_trips(document: dict[str, Any], write_yaml):
    page = cart_page()
    page["calls"][2]["cache"] = {"ttl_s": 30}  # tags are optional (the canonical form leaves [] out)
    document["endpoints"].append(page)
    assert run("import", str(write_yaml(document)))[0] == 0
    exported = run("export")[1]
    assert "        cache:\n          ttl_s: 30\n    response:" in exported
    from registry.config.plan import plan_from_document

    products = plan_from_document(normalize(document, DOCUMENT), version="t").endpoints[-1].calls[2]
    assert products.cache is not None and (products.cache.ttl_s, products.cache.tags) == (30, ())
    assert run("import", str(write_yaml(exported, "again.yaml")))[0] == 0
    assert run("export")[1] == exported
