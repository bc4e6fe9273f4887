"""The issue-14 resilience features configured on the checkout, but not triggered by it
(issue 14's "Done when": under 5 % CPU per request). Used by the in-process A/B
(bench/ab/resilience_features.py) and by ``bench/run.py --resilience-variant``.

To every service the checkout calls: ``deadline_header``, a retry budget (``budget_percent``,
``budget_min_per_s``), the rate-based breaker rule (``min_calls``, ``failure_rate``) and
``hedge`` with an ``after_ms`` the simulator's latencies do not reach (its slowest answer
takes 120 ms; every checkout call's timeout is 200 ms or more); to the optional shipping call
``stale_if_error_s``; to the endpoint a ``response_schema`` the answer matches
(``on_schema_violation: fail``, so a violation would show as a 502).
"""

from __future__ import annotations

import copy
import os
from typing import Any

HEDGE_AFTER_MS = 150  # over the simulator's slowest answer (120 ms), under every checkout call's timeout (200 ms+)
CHECKOUT = "checkout-summary"

# The checkout's answer, as the simulator assembles it: total 16234 (bench/micro.py checks it).
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["cart", "pricing", "tax", "total", "availabilityConfirmed"],
    "properties": {
        "cart": {
            "type": "object",
            "required": ["items", "itemCount"],
            "properties": {
                "items": {
                    "type": "array",
                    "items": {"type": "object", "required": ["sku", "quantity"]},
                },
                "itemCount": {"type": "integer", "minimum": 0},
            },
        },
        "pricing": {
            "type": "object",
            "required": ["subtotal", "currency"],
            "properties": {"subtotal": {"type": "number"}, "currency": {"type": "string"}},
        },
        "shipping": {"type": ["object", "null"]},
        "tax": {
            "type": "object",
            "required": ["amount", "rate"],
            "properties": {"amount": {"type": "number"}, "rate": {"type": "number"}},
        },
        "total": {"type": "number"},
        "availabilityConfirmed": {"type": "boolean"},
    },
}


ALL = ("deadline", "budget", "breaker", "hedge", "stale", "schema")
# One feature's cost alone: --env RESILIENCE_FEATURES=hedge (comma-separated; default all).
FEATURES = tuple(name for name in os.environ.get("RESILIENCE_FEATURES", ",".join(ALL)).split(",") if name)


def with_features(document: dict[str, Any], features: tuple[str, ...] = ALL) -> dict[str, Any]:
    """The document with the issue-14 features configured on the checkout's services and endpoint."""
    document = copy.deepcopy(document)
    endpoint = next(ep for ep in document["endpoints"] if ep["name"] == CHECKOUT)
    for call in endpoint["calls"]:
        service = document["services"][call["service"]]
        if "deadline" in features:
            service["deadline_header"] = "X-Request-Deadline-Ms"
        if "budget" in features:
            service["retry"] = {**service["retry"], "budget_percent": 20, "budget_min_per_s": 5}
        if "breaker" in features:
            service["breaker"] = {**service["breaker"], "min_calls": 20, "failure_rate": 50}
        if "hedge" in features:
            service["hedge"] = {"after_ms": HEDGE_AFTER_MS}
        if "stale" in features and not call.get("required", True):
            call["stale_if_error_s"] = 300
    if "schema" in features:
        endpoint["response_schema"] = RESPONSE_SCHEMA
        endpoint["on_schema_violation"] = "fail"
    return document
