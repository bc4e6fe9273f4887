"""One trace per aggregate request, a span per downstream attempt, and the same
trace id in the ``traceparent`` every downstream receives (in-process, in-memory exporter)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import yaml
from django.core.management import call_command
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.e2e.ops_config import ops_config
from tests.support.spans import record_spans

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = record_spans(monkeypatch)
    yield exporter
    exporter.shutdown()


def _serve(config_yaml: str, tmp_path) -> None:
    from gateway_project import wiring

    path = tmp_path / "gateway.yaml"
    path.write_text(config_yaml, encoding="utf-8")
    call_command("gateway", "import", str(path))
    wiring.runtime_holder().invalidate()
    runtime = wiring.runtime_holder().current()
    for name in runtime.plan.services:  # breakers are shared (Redis): start from closed
        runtime.pool.breaker(name).reset()


def test_one_trace_with_a_span_per_attempt_and_traceparent_downstream(client, fake_downstream, spans, tmp_path) -> None:
    answers = itertools.chain([(500, {"error": "hiccup"})], itertools.repeat((200, {"items": [1]})))
    cart = fake_downstream({"/carts/1": lambda handler: next(answers)})
    shipping = fake_downstream({"/estimate": (200, {"options": []})})
    document = yaml.safe_load(ops_config(cart=cart.url, shipping=shipping.url))
    document["services"]["cart"]["retry"] = {"max_retries": 1, "backoff": "none", "retry_on": ["5xx"]}
    _serve(yaml.safe_dump(document), tmp_path)

    response = client.get("/v1/summary")

    assert response.status_code == 200
    finished = spans.get_finished_spans()
    trace_ids = {span.context.trace_id for span in finished}
    assert len(trace_ids) == 1
    trace_id = format(trace_ids.pop(), "032x")
    assert [s.kind for s in finished].count(SpanKind.SERVER) == 1
    attempts = sorted(
        (
            s.attributes["gateway.service"],
            s.attributes["gateway.call_id"],
            s.attributes["gateway.attempt"],
            s.attributes["gateway.outcome"],
        )
        for s in finished
        if s.name.startswith("attempt ")
    )
    assert attempts == [("cart", "cart", 1, "5xx"), ("cart", "cart", 2, "ok"), ("shipping", "ship", 1, "ok")]
    server_span = next(s for s in finished if s.kind is SpanKind.SERVER)
    for span in finished:
        if span.name.startswith("attempt "):
            assert span.parent is not None and span.parent.span_id == server_span.context.span_id
    received = [*cart.headers["/carts/1"], *shipping.headers["/estimate"]]
    assert len(received) == 3
    assert {headers["traceparent"].split("-")[1] for headers in received} == {trace_id}
