"""Plain ``a.b.c`` expressions skip the JMESPath interpreter: they must give exactly
what the interpreter gives, for every shape of context."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest

from orchestration.templates import Expression, compile_template

CONTEXTS: list[Any] = [
    {"a": {"b": {"c": 1}}},
    {"a": {"b": {"c": None}}},
    {"a": {"b": {"c": [1, {"d": 2}]}}},
    {"a": {"b": "text"}},
    {"a": {"b": 0, "b-c": False}},
    {"a": [1, 2]},
    {"a": None},
    {"a": {"b": {}}},
    {},
    {"a": {"b": {"c": {"d": ""}}}},
]


@pytest.mark.parametrize("source", ["a", "a.b", "a.b.c", "a.b.c.d", 'a."b-c"', "a.b.c.d.e"])
@pytest.mark.parametrize("context", CONTEXTS, ids=range(len(CONTEXTS)))
def test_a_field_path_gives_what_the_interpreter_gives(source: str, context: Any) -> None:
    expression = Expression(source, "here")
    assert expression._path is not None  # the fast path is taken
    assert expression.evaluate(context) == jmespath.search(source, context)


@pytest.mark.parametrize("source", ["a.b[0]", "a[*].b", "length(a)", "a.{x: b}", "`1`", "a || b"])
def test_anything_else_goes_through_the_interpreter(source: str) -> None:
    expression = Expression(source, "here")
    assert expression._path is None
    context = {"a": {"b": [1]}, "b": 2}
    try:
        expected = jmespath.search(source, context)
    except jmespath.exceptions.JMESPathError:
        expected = None
    assert expression.evaluate(context) == expected


@pytest.mark.parametrize(
    ("source", "reads"),
    [
        ("request.headers.x", {("request", "headers", "x")}),
        ('request."headers"."x-channel"', {("request", "headers", "x-channel")}),
        ("request.headers[0]", {("request", "headers")}),
        ("request.body.items[0].sku", {("request", "body", "items")}),
        ("request.query.tags[].name", {("request", "query", "tags")}),
        ("request.body.a || user.sub", {("request", "body", "a"), ("user", "sub")}),
        ("[request.body, user]", {("request", "body"), ("user",)}),
        ("{me: user.sub}", {("user", "sub")}),
        ("request.headers | keys(@)", {("request", "headers")}),
        ("cart.items[?price > `1`].sku", {("cart", "items")}),
        ("sort_by(cart.items, &user)", {("cart", "items")}),  # &user reads each item, not the root
        ("request.*", {("request",)}),  # the whole request: its headers too
        ("@", {()}),
        ("@.user", {()}),
        ("*.sub", {()}),
        ("length(@)", {()}),
        ("`1`", set()),
    ],
)
def test_the_field_paths_an_expression_reads(source: str, reads: set[tuple[str, ...]]) -> None:
    expression = Expression(source, "here")
    assert expression.reads == reads
    assert expression.roots == {path[0] for path in reads if path}


@pytest.mark.parametrize(
    ("source", "headers", "user"),
    [
        ({"a": "{{ request.headers.x }}", "b": "{{ cart.id }}"}, True, False),
        ("Hello {{ user.name }} from {{ request.path.id }}", False, True),
        (["{{ request.body }}", "{{ request.query.q }}"], False, False),
        ({"all": "{{ request }}"}, True, False),
        ("{{ @ }}", True, True),
        ("no holes", False, False),
    ],
)
def test_a_template_reads_below_a_prefix(source: Any, headers: bool, user: bool) -> None:
    template = compile_template(source)
    assert template.reads_below(("request", "headers")) is headers
    assert template.reads_below(("user",)) is user
