"""Server-Timing through gunicorn (gevent workers, parallel calls in greenlets):
present with the explain token, absent without it or with a wrong one."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.conftest import isolated_targets
from tests.e2e.ops_config import ops_config

pytestmark = pytest.mark.e2e

TOKEN = "e2e-explain-token-5d1c"


def _entries(header: str) -> dict[str, tuple[float, str]]:
    found = {}
    for entry in header.split(", "):
        match = re.fullmatch(r'([\w-]+);dur=([0-9.]+)(?:;desc="([^"]*)")?', entry)
        assert match, entry
        found[match.group(1)] = (float(match.group(2)), match.group(3) or "")
    return found


def test_server_timing_only_for_the_explain_token(fake_downstream, gateway_server) -> None:
    cart = fake_downstream({"*": (200, {"items": [1, 2]})})
    shipping = fake_downstream({"/estimate": (503, {"error": "down"})})
    database, redis_db = isolated_targets("spec", 1)
    server = gateway_server(
        ops_config(cart=cart.url, shipping=shipping.url),
        {"GATEWAY_EXPLAIN_TOKEN": TOKEN},
        workers=1,
        database=database,
        redis_db=redis_db,
    )

    status, headers, body = server.get("/v1/summary", headers={"X-Gateway-Explain": TOKEN})
    assert status == 200 and json.loads(body)["partialData"] is True
    timing = _entries(headers["Server-Timing"])
    assert list(timing) == ["total", "cart", "ship"]  # the two calls of stage 1 ran in parallel greenlets
    assert timing["cart"][1] == "cart 200 attempts=1"
    assert timing["ship"][1] == "shipping 503 attempts=1 fallback"
    assert timing["cart"][0] <= timing["total"][0]

    for sent in ({}, {"X-Gateway-Explain": "wrong"}, {"X-Gateway-Explain": TOKEN[:-1]}):
        status, headers, _ = server.get("/v1/summary", headers=sent)
        assert status == 200
        assert "Server-Timing" not in headers, sent

    status, headers, _ = server.get("/v1/cart/7", headers={"X-Gateway-Explain": TOKEN})
    assert status == 200 and _entries(headers["Server-Timing"])["cart"][1] == "cart 200 attempts=1"

    explain_lines = [line for line in server.log_lines() if '"explain": true' in line]
    assert len(explain_lines) == 2, server.log_lines()[-10:]
    assert TOKEN not in "\n".join(server.log_lines())
