"""A/B for bench/micro.py --ab: B = every issue-14 resilience feature configured but not
triggered, A = the same checkout without them (issue 14, "Done when": under 5 % CPU).

Both runtimes are built here the product's way (``wiring._build_runtime`` of a plan
compiled from a checked document), from the checkout imported into the benchmark's
database; the toggle swaps which one the aggregate view serves. B adds, to every service
the checkout calls: ``deadline_header``, a retry budget (``budget_percent``,
``budget_min_per_s``), the rate-based breaker rule (``min_calls``, ``failure_rate``) and
``hedge`` with an ``after_ms`` the zero-latency simulator never reaches; to the optional
shipping call ``stale_if_error_s`` (every good answer is kept, in Redis with ``--redis``);
and to the endpoint a ``response_schema`` the answer matches (``on_schema_violation:
fail``, so a violation would show as a 502 and stop the run). The simulator never fails,
so no retry, hedge, breaker opening or stale answer happens: this is the price of having
them configured.

    python bench/micro.py --ab bench/ab/resilience_features.py -n 8000 -c 4 --blocks 20
    python bench/micro.py --ab bench/ab/resilience_features.py -n 8000 -c 4 --redis redis://127.0.0.1:6379/10
"""

from __future__ import annotations

from typing import Any

from resilience_config import CHECKOUT, FEATURES, with_features  # bench/resilience_config.py

from gateway_project import wiring
from orchestration.web import aggregate
from orchestration.web.runtime import GatewayRuntime, LoadedConfig
from registry import selectors
from registry.config.plan import plan_from_document
from registry.config.validation import config_check


def _runtime(document: dict[str, Any], version: str) -> GatewayRuntime:
    problems = config_check(document)
    if problems:
        raise SystemExit(f"resilience_features: the {version} document does not check: {problems}")
    plan = plan_from_document(document, version=version)
    return wiring._build_runtime(LoadedConfig(plan=plan, api_keys=selectors.api_key_subjects_active()))


_base = selectors.config_document_get()
_a = _runtime(_base, "A")
_b = _runtime(with_features(_base, FEATURES), "B")

# B really carries the features (a rename in the schema would otherwise measure nothing).
_b_endpoint = next(ep for ep in _b.plan.endpoints if ep.name == CHECKOUT)
assert ("schema" in FEATURES) == (_b_endpoint.response_contract is not None)
assert ("stale" in FEATURES) == any(call.stale_if_error_s for call in _b_endpoint.calls)
for _call in _b_endpoint.calls:
    _service = _b.plan.services[_call.service]
    assert ("hedge" in FEATURES) == (_service.hedge is not None)
    assert ("deadline" in FEATURES) == bool(_service.deadline_header)
    assert ("budget" in FEATURES) == (_service.retry.budget_percent is not None)
    assert ("breaker" in FEATURES) == (_service.breaker.min_calls is not None)


def toggle(on: bool) -> None:
    runtime = _b if on else _a
    aggregate.install_runtime_source(lambda: runtime)
