"""Compiled JMESPath closures against jmespath's own interpreter: the same value, or the
same error, for every expression of a corpus on every document of a corpus
(``orchestration.jmespath_closures``)."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.jmespath_closures import INTERPRETER, compile_node
from orchestration.templates import compile_template

EXPRESSIONS = [
    # the template's own (examples/checkout.yaml)
    "cart.items[].{sku: sku, quantity: quantity}",
    "length(cart.items)",
    "shipping.{options: options, estimated: estimated}",
    "sum([pricing.subtotal, tax.amount])",
    "length(cart.items) > `0`",
    # every node type the closures build, and the ones they hand to the interpreter
    "a",
    "a.b.c",
    "@",
    '`{"x": [1, 2]}`',
    "'text'",
    "a[0]",
    "a[-1]",
    "a[5]",
    "a[1:3]",
    "a[::-1]",
    "a[:2].b",
    "a[*].b",
    "a[*].b[0]",
    "a[].b",
    "a[][]",
    "a.*",
    "a.*.b",
    "*.b",
    "a[?b > `1`].c",
    "a[?b == 'x']",
    "a[?b]",
    "a[?!b].c",
    "a[?b && c]",
    "a[?b || c]",
    "a || b",
    "a && b",
    "!a",
    "!`0`",
    "!`[]`",
    "a == b",
    "a != b",
    "a < b",
    "a <= b",
    "a > b",
    "a >= b",
    "[a, b]",
    "[a, b][0]",
    "{x: a, y: b.c}",
    "a.{x: b, y: c}",
    "a[].[b, c]",
    "a | b",
    "a | [0]",
    "a[*] | [0]",
    "length(a)",
    "keys(a)",
    "values(a)",
    "max(a)",
    "min(a)",
    "avg(a)",
    "sum(a)",
    "abs(a)",
    "contains(a, 'x')",
    "join(', ', a)",
    "to_string(a)",
    "to_number(a)",
    "type(a)",
    "not_null(a, b, 'z')",
    "sort(a)",
    "reverse(a)",
    "sort_by(a, &b)",
    "max_by(a, &b)",
    "map(&b, a)",
    "merge(a, b)",
    "starts_with(a, 'x')",
    "floor(a)",
    "length(a) > `0`",
    "a[?length(b) > `1`]",
]

DOCUMENTS: list[Any] = [
    None,
    0,
    1,
    -2.5,
    True,
    False,
    "",
    "x",
    "xyz",
    [],
    {},
    [1, 2, 3],
    [3, 1, 2],
    ["x", "y"],
    {"a": None},
    {"a": 0},
    {"a": 2, "b": 1},
    {"a": "x", "b": "x"},
    {"a": [1, 2], "b": [1, 2]},
    {"a": {"b": {"c": 7}}, "b": {"c": 8}},
    {"a": [{"b": 1, "c": "p"}, {"b": 2, "c": ""}, {"b": None}, 5]},
    {"a": [[1, [2]], 3, [4]]},
    {"a": {"x": {"b": 1}, "y": {"b": 2}}},
    {"a": [{"b": "x"}, {"b": "y", "c": True}]},
    {"a": [{"b": [1, 2]}, {"b": []}, {"b": "ab"}]},
    {"a": {"b": 1}, "b": {"c": 2}},
    {
        "cart": {"items": [{"sku": "s1", "quantity": 2, "price": 1.5}, {"sku": "s2", "quantity": 1}]},
        "pricing": {"subtotal": 10.5, "currency": "EUR"},
        "tax": {"amount": 2.1},
        "shipping": {"options": [{"id": "std"}], "estimated": "2d"},
    },
    {"cart": {"items": []}, "pricing": {"subtotal": "10"}, "tax": None, "shipping": None},
    {"cart": {"items": "not a list"}, "pricing": {"subtotal": 1}, "tax": {"amount": None}},
]


def outcome(evaluate: Any, document: Any) -> tuple[str, Any]:
    """The value, or the type of the error: jmespath raises its own errors and, here and there,
    Python's (``'x' > 1`` is a TypeError; so is ``merge`` of a null)."""
    try:
        return "value", evaluate(document)
    except Exception as error:  # noqa: BLE001 - compared, not handled
        return "error", type(error)


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_the_closures_answer_as_the_interpreter_does(expression: str) -> None:
    node = jmespath.compile(expression).parsed
    compiled = compile_node(node)
    for document in DOCUMENTS:
        expected = outcome(lambda value: INTERPRETER.visit(node, value), document)
        assert outcome(compiled, document) == expected, (expression, document)


SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-3, 3, allow_nan=False)
JSON = st.recursive(
    SCALARS | st.sampled_from(["", "a", "b"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(document=JSON, expression=st.sampled_from(EXPRESSIONS))
def test_random_documents_too(document: Any, expression: str) -> None:
    node = jmespath.compile(expression).parsed
    expected = outcome(lambda value: INTERPRETER.visit(node, value), document)
    assert outcome(compile_node(node), document) == expected


@pytest.mark.parametrize(
    ("source", "context"),
    [
        ("a[?b > `1`].c", {"a": [{"b": "x", "c": 1}]}),  # jmespath orders strings, then Python refuses 'x' > 1
        ("merge(a, b)", {"a": {}}),  # jmespath's merge iterates a null
        ("length(a)", {"a": 5}),  # jmespath's own type error
    ],
)
def test_a_template_whose_expression_fails_at_run_time_renders_null(source: str, context: Any) -> None:
    assert compile_template(f"{{{{ {source} }}}}").render(context) is None
