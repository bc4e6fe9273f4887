"""Plain ``a.b.c`` expressions skip the JMESPath interpreter: they must give exactly
what the interpreter gives, for every shape of context."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest

from orchestration.templates import Expression

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
