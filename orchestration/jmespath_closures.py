"""JMESPath expressions turned into nested Python closures once, at configuration load.

jmespath's ``TreeInterpreter`` walks the parsed tree on every evaluation: a dict lookup
of the node's type, a bound-method dispatch and a ``visit`` frame per node per value.
The checkout's answer and requests evaluate ~16 expressions a request that are more than
a field path (``cart.items[].{sku: sku, quantity: quantity}`` once per request of three,
``length(...)``, ``sum([...])``): ~49 µs in all (bench/README.md, round 10). Here each
node becomes one closure that already holds its children, so evaluating is a chain of
direct calls.

The semantics are the interpreter's own, node type by node type (jmespath 1.1.0,
``jmespath/visitor.py``), and its helpers are reused where they decide a value:
comparisons, truthiness, the function table with its argument checks (its errors
propagate as from the interpreter). A node type not listed here (``expref``, which hands
an expression to ``sort_by`` and friends) is evaluated by the interpreter itself, from
that node down. tests/orchestration/test_jmespath_closures.py compares both on a corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jmespath import visitor as jmespath_visitor
from jmespath.visitor import TreeInterpreter

Evaluate = Callable[[Any], Any]

INTERPRETER = TreeInterpreter()  # keeps no per-evaluation state: one serves every expression
# The interpreter's own helpers (private to jmespath, absent from its type stubs): reused, not copied.
_interpreter: Any = INTERPRETER
_visitor: Any = jmespath_visitor
_is_false = _interpreter._is_false
_is_comparable = _visitor._is_comparable
_is_actual_number = _visitor._is_actual_number
_COMPARATORS = _visitor.TreeInterpreter.COMPARATOR_FUNC
_EQUALITY = frozenset(_visitor.TreeInterpreter._EQUALITY_OPS)
_call_function = _interpreter._functions.call_function


def compile_node(node: Mapping[str, Any]) -> Evaluate:
    """The evaluation of a parsed JMESPath node as one closure of the current value."""
    build = _BUILDERS.get(node["type"])
    if build is None:
        return lambda value: _interpreter.visit(node, value)
    return build(node)


def _children(node: Mapping[str, Any]) -> list[Evaluate]:
    return [compile_node(child) for child in node["children"]]


def _field(node: Mapping[str, Any]) -> Evaluate:
    key = node["value"]

    def field(value: Any) -> Any:
        try:
            return value.get(key)
        except AttributeError:
            return None

    return field


def _sequence(node: Mapping[str, Any]) -> Evaluate:
    """subexpression, index_expression and pipe: each child applied to the previous result."""
    steps = _children(node)
    if len(steps) == 2:
        first, second = steps
        return lambda value: second(first(value))

    def sequence(value: Any) -> Any:
        for step in steps:
            value = step(value)
        return value

    return sequence


def _current(node: Mapping[str, Any]) -> Evaluate:
    return lambda value: value


def _literal(node: Mapping[str, Any]) -> Evaluate:
    literal = node["value"]
    return lambda value: literal


def _collected(elements: Any, each: Evaluate) -> list[Any]:
    """A projection's right side over each element, the nulls left out."""
    collected = []
    for element in elements:
        current = each(element)
        if current is not None:
            collected.append(current)
    return collected


def _projection(node: Mapping[str, Any]) -> Evaluate:
    base, each = _children(node)

    def projection(value: Any) -> Any:
        elements = base(value)
        return _collected(elements, each) if isinstance(elements, list) else None

    return projection


def _value_projection(node: Mapping[str, Any]) -> Evaluate:
    base, each = _children(node)

    def value_projection(value: Any) -> Any:
        try:
            elements = base(value).values()
        except AttributeError:
            return None
        return _collected(elements, each)

    return value_projection


def _filter_projection(node: Mapping[str, Any]) -> Evaluate:
    base, each, condition = _children(node)

    def filter_projection(value: Any) -> Any:
        elements = base(value)
        if not isinstance(elements, list):
            return None
        collected = []
        for element in elements:
            if not _is_false(condition(element)):
                current = each(element)
                if current is not None:
                    collected.append(current)
        return collected

    return filter_projection


def _flatten(node: Mapping[str, Any]) -> Evaluate:
    (base,) = _children(node)

    def flatten(value: Any) -> Any:
        elements = base(value)
        if not isinstance(elements, list):
            return None
        merged: list[Any] = []
        for element in elements:
            if isinstance(element, list):
                merged.extend(element)
            else:
                merged.append(element)
        return merged

    return flatten


def _index(node: Mapping[str, Any]) -> Evaluate:
    position = node["value"]

    def index(value: Any) -> Any:
        if not isinstance(value, list):
            return None
        try:
            return value[position]
        except IndexError:
            return None

    return index


def _slice(node: Mapping[str, Any]) -> Evaluate:
    bounds = slice(*node["children"])
    return lambda value: value[bounds] if isinstance(value, list) else None


def _key_val_pair(node: Mapping[str, Any]) -> Evaluate:
    (inner,) = _children(node)
    return inner


def _multi_select_dict(node: Mapping[str, Any]) -> Evaluate:
    pairs = [(child["value"], compile_node(child)) for child in node["children"]]

    def multi_select_dict(value: Any) -> Any:
        if value is None:
            return None
        return {key: evaluate(value) for key, evaluate in pairs}

    return multi_select_dict


def _multi_select_list(node: Mapping[str, Any]) -> Evaluate:
    items = _children(node)

    def multi_select_list(value: Any) -> Any:
        if value is None:
            return None
        return [evaluate(value) for evaluate in items]

    return multi_select_list


def _function_expression(node: Mapping[str, Any]) -> Evaluate:
    name = node["value"]
    arguments = _children(node)
    return lambda value: _call_function(name, [argument(value) for argument in arguments])


def _comparator(node: Mapping[str, Any]) -> Evaluate:
    left, right = _children(node)
    compare = _COMPARATORS[node["value"]]
    if node["value"] in _EQUALITY:
        return lambda value: compare(left(value), right(value))

    def ordering(value: Any) -> Any:  # only numbers are ordered; anything else compares to null
        first, second = left(value), right(value)
        if not (_is_comparable(first) and _is_comparable(second)):
            return None
        return compare(first, second)

    return ordering


def _or(node: Mapping[str, Any]) -> Evaluate:
    left, right = _children(node)

    def either(value: Any) -> Any:
        matched = left(value)
        return right(value) if _is_false(matched) else matched

    return either


def _and(node: Mapping[str, Any]) -> Evaluate:
    left, right = _children(node)

    def both(value: Any) -> Any:
        matched = left(value)
        return matched if _is_false(matched) else right(value)

    return both


def _not(node: Mapping[str, Any]) -> Evaluate:
    (inner,) = _children(node)

    def negation(value: Any) -> Any:
        original = inner(value)
        if _is_actual_number(original) and original == 0:  # !0 is false: 0 is not falsy in JMESPath
            return False
        return not original

    return negation


_BUILDERS: dict[str, Callable[[Mapping[str, Any]], Evaluate]] = {
    "field": _field,
    "subexpression": _sequence,
    "index_expression": _sequence,
    "pipe": _sequence,
    "current": _current,
    "identity": _current,
    "literal": _literal,
    "projection": _projection,
    "value_projection": _value_projection,
    "filter_projection": _filter_projection,
    "flatten": _flatten,
    "index": _index,
    "slice": _slice,
    "key_val_pair": _key_val_pair,
    "multi_select_dict": _multi_select_dict,
    "multi_select_list": _multi_select_list,
    "function_expression": _function_expression,
    "comparator": _comparator,
    "or_expression": _or,
    "and_expression": _and,
    "not_expression": _not,
}
