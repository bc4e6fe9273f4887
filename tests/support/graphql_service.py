"""A real GraphQL service for tests: graphql-core's own executor behind a fake downstream.

``GraphqlService.route`` is a ``FakeDownstream`` route: it parses and validates the
posted query and runs it with ``graphql_sync`` against a small product schema, and
answers as GraphQL-over-HTTP servers do — a request error (syntax, validation, a
variable that does not coerce) is ``{"errors": [...]}`` with no ``data``; an execution
error keeps ``data`` with the failed field null (or ``data: null`` when a non-null root
field fails). It records every request body it got.

Schema: ``product(id: ID!): Product`` (null for an unknown id), ``products: [Product!]!``,
``broken: String!`` (always fails: ``data`` is null); a product's ``rating`` fails for
``p-norating`` (a partial result).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from graphql import GraphQLError, build_schema, graphql_sync, parse, validate

SDL = """
type Product { id: ID! name: String! price: Int! rating: Float }
type Query {
  product(id: ID!): Product
  products: [Product!]!
  broken: String!
}
"""
PRODUCTS = {
    "p-1": {"id": "p-1", "name": "Wireless Headphones", "price": 7999, "rating": 4.6},
    "p-2": {"id": "p-2", "name": "USB-C Charger 65W", "price": 3999, "rating": 4.2},
    "p-norating": {"id": "p-norating", "name": "Protective Case", "price": 2999, "rating": None},
}


def _product(data: dict[str, Any]) -> dict[str, Any]:
    product = dict(data)
    if product["id"] == "p-norating":

        def rating(_info: Any) -> float:
            raise GraphQLError("ratings are unavailable")

        product["rating"] = rating
    return product


class _Root:
    @staticmethod
    def product(_info: Any, id: str) -> dict[str, Any] | None:
        return _product(PRODUCTS[id]) if id in PRODUCTS else None

    @staticmethod
    def products(_info: Any) -> list[dict[str, Any]]:
        return [_product(item) for item in PRODUCTS.values()]

    @staticmethod
    def broken(_info: Any) -> str:
        raise GraphQLError("the product database is down")


class GraphqlService:
    def __init__(self) -> None:
        self.schema = build_schema(SDL)
        self.bodies: list[Any] = []
        self._lock = threading.Lock()

    def route(self, handler: Any) -> tuple[int, Any]:
        try:
            body = json.loads(handler.body or b"null")
        except ValueError:
            return 400, {"errors": [{"message": "the body is not JSON"}]}
        with self._lock:
            self.bodies.append(body)
        if handler.command != "POST" or not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return 400, {"errors": [{"message": "POST a JSON object with a query"}]}
        try:
            document = parse(body["query"])
        except GraphQLError as error:
            return 200, {"errors": [error.formatted]}
        invalid = validate(self.schema, document)
        if invalid:
            return 200, {"errors": [error.formatted for error in invalid]}
        result = graphql_sync(
            self.schema,
            body["query"],
            root_value=_Root(),
            variable_values=body.get("variables"),
            operation_name=body.get("operationName"),
        )
        if result.data is None and result.errors and not _executed(result.errors):
            return 200, {"errors": [error.formatted for error in result.errors]}  # a request error: no data
        return 200, result.formatted


def _executed(errors: list[GraphQLError]) -> bool:
    """Errors raised while executing carry the path of their field; request errors do not."""
    return any(error.path for error in errors)
