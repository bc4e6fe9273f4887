"""GraphQL calls through the real executor, over real HTTP, against a real GraphQL server
(graphql-core behind a loopback fake downstream, tests/support/graphql_service.py):
the request sent, ``data`` as the result, and how GraphQL errors fail a call (section 8)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from orchestration.context import RequestContext
from orchestration.downstream import DownstreamPool
from orchestration.errors import Failure, FailureKind, failure_to_error
from orchestration.executor import Executor, Success
from orchestration.plan import BreakerPolicy, GraphqlRequest, RetryPolicy, Service
from orchestration.templates import compile_template
from tests.orchestration.engine_kit import Recorder, call, endpoint, plan
from tests.support.fake_downstream import FakeDownstream, start_fake_downstream, stop_fake_downstream
from tests.support.graphql_service import GraphqlService

PRODUCT = "query($id: ID!) { product(id: $id) { name price rating } }"


@pytest.fixture
def catalog() -> Iterator[tuple[GraphqlService, FakeDownstream]]:
    graphql = GraphqlService()
    fake = start_fake_downstream({"/graphql": graphql.route, "/not-graphql": (200, [1, 2]), "/down": (503, {})})
    yield graphql, fake
    stop_fake_downstream(fake)


def graphql_call(query: str = PRODUCT, variables: Any = None, **options: Any) -> Any:
    request = GraphqlRequest(query, compile_template(variables or {"id": "{{ request.query.id }}"}))
    return call("product", "catalog", method="POST", path=options.pop("path", "/graphql"), graphql=request, **options)


def run(
    fake: FakeDownstream, *calls: Any, query: dict[str, str] | None = None, **policies: Any
) -> tuple[Success | Failure, Recorder]:
    services = [Service(name="catalog", base_url=fake.url, timeout_ms=2000, **policies)]
    recorder = Recorder()
    the_plan = plan(services, endpoint(*calls, response={"product": "{{ product }}"}))
    executor = Executor(the_plan, DownstreamPool(the_plan.services, environ={}, observer=recorder), observer=recorder)
    result = executor.run(the_plan.endpoints[0], RequestContext(method="GET", query=query or {}, request_id="r-1"))
    return result, recorder


def test_the_call_posts_query_and_templated_variables_and_its_result_is_data(catalog):
    graphql, fake = catalog
    result, _ = run(fake, graphql_call(), query={"id": "p-1"})
    assert result == Success({"product": {"product": {"name": "Wireless Headphones", "price": 7999, "rating": 4.6}}})
    assert graphql.bodies == [{"query": PRODUCT, "variables": {"id": "p-1"}}]
    sent = fake.headers["/graphql"][0]
    assert sent["content-type"] == "application/json" and sent["x-request-id"] == "r-1"


def test_operation_name_is_sent_and_picks_the_operation(catalog):
    graphql, fake = catalog
    query = "query One { products { name } } query Two { products { price } }"
    request = GraphqlRequest(query, compile_template({}), operation_name="Two")
    result, _ = run(fake, call("product", "catalog", method="POST", path="/graphql", graphql=request))
    assert graphql.bodies == [{"query": query, "variables": {}, "operationName": "Two"}]
    assert result == Success({"product": {"products": [{"price": 7999}, {"price": 3999}, {"price": 2999}]}})


def test_errors_beside_data_are_a_partial_graphql_result_and_data_is_used(catalog):
    _, fake = catalog
    result, _ = run(fake, graphql_call(), query={"id": "p-norating"})
    assert result == Success({"product": {"product": {"name": "Protective Case", "price": 2999, "rating": None}}})


def test_an_unknown_id_is_null_data_not_an_error(catalog):
    _, fake = catalog
    assert run(fake, graphql_call(), query={"id": "p-9"})[0] == Success({"product": {"product": None}})


@pytest.mark.parametrize(
    ("query", "variables", "why"),
    [
        (PRODUCT, {"id": "{{ request.query.id }}"}, "a variable that rendered null: a request error, no data key"),
        ("{ broken }", {}, "a non-null root field failed: data is null"),
    ],
)
def test_errors_without_data_fail_a_required_call_with_502_downstream_failure(catalog, query, variables, why):
    _, fake = catalog
    result, recorder = run(fake, graphql_call(query, variables))
    assert isinstance(result, Failure), why
    assert [(f.service, f.kind) for f in result.required] == [("catalog", FailureKind.FAILURE)]
    error = failure_to_error(result)
    assert (error.status, error.code, list(error.failed_services)) == (502, "DOWNSTREAM_FAILURE", ["catalog"])
    assert [a.kind.value for a in recorder.attempts] == ["graphql_error"]


def test_errors_without_data_give_an_optional_call_its_fallback_and_a_partial_response(catalog):
    _, fake = catalog
    result, _ = run(fake, graphql_call("{ broken }", {}, required=False, fallback={"product": None}))
    assert isinstance(result, Success) and (result.partial, result.failed_services) == (True, ("catalog",))
    assert result.body["product"] == {"product": None}  # the fallback
    assert (result.body["partialData"], result.body["failedServices"]) == (True, ["catalog"])


def test_graphql_errors_do_not_open_the_breaker_nor_are_retried_but_unparseable_answers_do(catalog):
    graphql, fake = catalog
    policies = {
        "breaker": BreakerPolicy(failure_threshold=2, window_s=60, open_s=60),
        "retry": RetryPolicy(max_retries=2, base_ms=0, retry_on=frozenset({"5xx", "timeout"})),
    }
    broken = graphql_call("{ broken }", {}, idempotent=True)
    services = [Service(name="catalog", base_url=fake.url, timeout_ms=2000, **policies)]
    the_plan = plan(services, endpoint(broken, response={"product": "{{ product }}"}))
    executor = Executor(the_plan, DownstreamPool(the_plan.services, environ={}))
    request = RequestContext(method="GET")
    for _ in range(4):  # over the threshold: every one still reaches the service, once
        assert isinstance(executor.run(the_plan.endpoints[0], request), Failure)
    assert len(graphql.bodies) == 4
    # The same service answering something that is no GraphQL response: the breaker counts it.
    not_graphql = graphql_call(path="/not-graphql")
    the_plan = plan(services, endpoint(not_graphql, response={"product": "{{ product }}"}))
    executor = Executor(the_plan, DownstreamPool(the_plan.services, environ={}))
    kinds = []
    for _ in range(3):
        failure = executor.run(the_plan.endpoints[0], RequestContext(method="GET", query={"id": "p-1"}))
        assert isinstance(failure, Failure)
        kinds.append(failure.required[0].kind)
    assert kinds == [FailureKind.FAILURE, FailureKind.FAILURE, FailureKind.CIRCUIT_OPEN]
    assert fake.hits["/not-graphql"] == 2


def test_a_non_2xx_answer_keeps_its_status_meaning(catalog):
    _, fake = catalog
    result, recorder = run(fake, graphql_call(path="/down"), query={"id": "p-1"})
    assert isinstance(result, Failure) and result.required[0].status == 503
    assert [a.kind.value for a in recorder.attempts] == ["bad_status"]


def test_the_request_body_is_json_of_the_rendered_variables_of_any_type(catalog):
    graphql, fake = catalog
    variables = {"id": "{{ request.query.id }}", "ids": ["{{ request.query.id }}", "p-2"], "n": 3}
    query = "query($id: ID!, $ids: [ID!], $n: Int) { product(id: $id) { name } }"
    run(fake, graphql_call(query, variables), query={"id": "p-1"})
    assert json.loads(json.dumps(graphql.bodies[0]["variables"])) == {"id": "p-1", "ids": ["p-1", "p-2"], "n": 3}
