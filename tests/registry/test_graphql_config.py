"""GraphQL calls (contract section 8) through check, import/export, compiler and admin."""

from __future__ import annotations

from typing import Any

import pytest

from registry import models
from registry.config.dumping import config_dump
from registry.config.plan import plan_from_document
from registry.config.schema import DOCUMENT
from registry.config.structure import normalize
from registry.config.validation import config_check
from registry.selectors import config_version_read
from tests.registry.test_admin import endpoint_post_data, endpoint_url, html
from tests.registry.test_command import run

QUERY = "query Product($id: ID!, $reviews: Int = 3) { product(id: $id) { name price } }"


def product_page() -> dict[str, Any]:
    return {
        "name": "product-page",
        "method": "GET",
        "path": "/products/{sku}",
        "timeout_ms": 2000,
        "calls": [
            {
                "id": "product",
                "service": "inventory",
                "stage": 1,
                "path": "/graphql",
                "graphql": {"query": QUERY, "variables": {"id": "{{ request.path.sku }}"}},
            },
        ],
        "response": {"name": "{{ product.product.name }}"},
    }


@pytest.fixture
def with_graphql(document: dict[str, Any]) -> dict[str, Any]:
    document["endpoints"].append(product_page())
    return document


def problems(document: Any) -> list[str]:
    return [str(problem) for problem in config_check(document)]


def graphql_call(document: dict[str, Any]) -> dict[str, Any]:
    return document["endpoints"][2]["calls"][0]


def test_a_graphql_call_passes_the_check_and_defaults_to_post(with_graphql):
    assert problems(with_graphql) == []
    assert "method" not in graphql_call(with_graphql)
    assert normalize(with_graphql, DOCUMENT)["endpoints"][2]["calls"][0]["method"] == "POST"
    assert normalize(with_graphql, DOCUMENT)["endpoints"][0]["calls"][0]["method"] == "GET"  # others keep GET


def test_a_query_that_does_not_parse_is_located_with_line_and_column(with_graphql):
    graphql_call(with_graphql)["graphql"]["query"] = "query($id: ID!) {\n  product(id: $id) { name "
    assert problems(with_graphql) == [
        "endpoints[2].calls[0].graphql.query: not a GraphQL document: "
        "Syntax Error: Expected Name, found <EOF>. (line 2, column 27)"
    ]


def test_method_body_and_graphql(with_graphql):
    call = graphql_call(with_graphql)
    call |= {"method": "GET", "body": {"query": "{ x }"}}
    assert problems(with_graphql) == [
        "endpoints[2].calls[0].method: a graphql call is sent with POST, not GET",
        "endpoints[2].calls[0].body: body and graphql are exclusive: graphql makes the body",
    ]


def test_variables_are_the_operations_own_and_compiled_templates(with_graphql):
    graphql_call(with_graphql)["graphql"]["variables"] = {"sku": "{{ request.path.sku }}", "reviews": "{{ crt.n }}"}
    assert problems(with_graphql) == [
        "endpoints[2].calls[0].graphql.variables.reviews: unknown call 'crt'",
        "endpoints[2].calls[0].graphql.variables.sku: the operation declares no $sku (it declares $id, $reviews)",
        "endpoints[2].calls[0].graphql.variables: $id is required by the operation and not given",
    ]
    graphql_call(with_graphql)["graphql"]["variables"] = {"id": "{{ request.path.sku", "reviews": 5}
    assert problems(with_graphql) == [
        "endpoints[2].calls[0].graphql.variables.id: unbalanced '{{' or '}}' in '{{ request.path.sku'"
    ]


def test_several_operations_need_operation_name_and_it_must_exist(with_graphql):
    graphql = graphql_call(with_graphql)["graphql"]
    graphql["query"] = QUERY + " query Other { products { name } }"
    assert problems(with_graphql) == [
        "endpoints[2].calls[0].graphql.operation_name: the query holds 2 operations; "
        "name the one to run with operation_name"
    ]
    graphql["operation_name"] = "Nope"
    assert problems(with_graphql) == ["endpoints[2].calls[0].graphql.operation_name: no operation named 'Nope'"]
    graphql["operation_name"] = "Product"
    assert problems(with_graphql) == []


def test_type_definitions_and_unknown_keys_are_refused(with_graphql):
    graphql = graphql_call(with_graphql)["graphql"]
    graphql |= {"query": "type Product { name: String }", "variables": {}, "extensions": {}}
    assert problems(with_graphql) == [
        "endpoints[2].calls[0].graphql.extensions: unknown key (expected one of: query, variables, operation_name)",
        "endpoints[2].calls[0].graphql.query: only operations and fragments can be sent (no type definitions)",
    ]


def test_a_shared_cache_refuses_variables_that_read_the_user(with_graphql):
    endpoint = with_graphql["endpoints"][2]
    endpoint["cache"] = {"ttl_s": 60, "scope": "shared"}
    assert problems(with_graphql) == []
    graphql_call(with_graphql)["graphql"]["variables"]["id"] = "{{ user.sub }}"
    assert problems(with_graphql) == [
        "endpoints[2].cache.scope: a shared entry would serve one user's answer to another: "
        "calls[0].graphql.variables.id reads 'user'; use scope: user"
    ]


def test_the_compiler_puts_the_graphql_request_in_the_plan(with_graphql):
    call = plan_from_document(with_graphql, version="t").endpoints[2].calls[0]
    assert call.method == "POST" and call.body is None and call.graphql is not None
    assert call.graphql.query == QUERY and call.graphql.operation_name is None
    assert call.graphql.variables.render({"request": {"path": {"sku": "p-1"}}}) == {"id": "p-1"}
    assert plan_from_document(with_graphql, version="t").endpoints[0].calls[0].graphql is None


@pytest.mark.django_db
def test_import_then_export_round_trips_the_graphql_block(with_graphql, write_yaml):
    graphql_call(with_graphql)["graphql"]["operation_name"] = "Product"
    assert run("import", str(write_yaml(with_graphql)))[0] == 0
    call = models.Call.objects.get(call_id="product", endpoint__name="product-page")
    assert (call.method, call.graphql_query, call.graphql_operation_name) == ("POST", QUERY, "Product")
    assert call.graphql_variables == {"id": "{{ request.path.sku }}"} and not call.has_body
    code, exported, _ = run("export")
    assert (code, exported) == (0, config_dump(normalize(with_graphql, DOCUMENT)))
    assert "operation_name: Product" in exported and "method: POST" in exported
    models.Endpoint.objects.all().delete()
    models.Service.objects.all().delete()
    assert run("import", str(write_yaml(exported, "again.yaml")))[0] == 0
    assert run("export") == (0, exported, "")


@pytest.mark.django_db
def test_the_admin_edits_and_checks_the_graphql_fields(with_graphql, write_yaml, admin_client):
    assert run("import", str(write_yaml(with_graphql)))[0] == 0
    endpoint = models.Endpoint.objects.get(name="product-page")
    page = html(admin_client.get(endpoint_url("product-page")))
    for field in ("graphql_query", "graphql_variables", "graphql_operation_name"):
        assert f'name="calls-0-{field}"' in page
    before = config_version_read()
    base = endpoint_post_data(endpoint) | {
        "calls-0-graphql_variables": '{"id": "{{ request.path.sku }}"}',
        "calls-0-body": "",
    }
    base.pop("calls-0-has_body", None)
    broken = base | {"calls-0-graphql_query": "query($id: ID!) { product(id: $id) { name }"}
    page = html(admin_client.post(endpoint_url("product-page"), broken))
    assert (
        "endpoints[0].calls[0].graphql.query: not a GraphQL document: Syntax Error: Expected Name, found <EOF>." in page
    )
    assert config_version_read() == before
    fixed = base | {"calls-0-graphql_query": "query($id: ID!) { product(id: $id) { name price } }"}
    answer = admin_client.post(endpoint_url("product-page"), fixed)
    assert answer.status_code == 302, html(answer)
    call = models.Call.objects.get(call_id="product", endpoint=endpoint)
    assert call.graphql_query == "query($id: ID!) { product(id: $id) { name price } }"
    assert config_version_read() != before
