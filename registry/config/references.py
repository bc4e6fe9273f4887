"""Compile every template of a document once, and check what each one reads.

Each string is compiled on its own so a problem points at the exact leaf
(``endpoints[0].response.total``), not just at the template that holds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from orchestration.templates import TemplateError, compile_template
from registry.config.problems import Problem, index_location, key_location

ALWAYS_AVAILABLE = frozenset({"request", "user"})
FAN_OUT_NAMES = frozenset({"item", "index"})  # a for_each call's element and its position
_FAN_OUT_ONLY = "'{}' is only available in the templates of a call with for_each"
# What a root a template reads is, or None when it is fine, given where the template is.
Resolver = Callable[[str], str | None]


def template_leaves(source: Any, location: str, out: list[Problem]) -> Iterator[tuple[str, str]]:
    """Every string of a JSON-shaped value with its location; bad keys and values go to ``out``."""
    if isinstance(source, str):
        yield location, source
    elif isinstance(source, Mapping):
        for key, value in source.items():
            if not isinstance(key, str):
                out.append(Problem(location, f"object keys must be strings, got {key!r}"))
                continue
            yield from template_leaves(value, key_location(location, key), out)
    elif isinstance(source, list):
        for index, value in enumerate(source):
            yield from template_leaves(value, index_location(location, index), out)
    elif not (source is None or isinstance(source, bool | int | float)):
        out.append(Problem(location, f"unsupported value of type {type(source).__name__}; use JSON values"))


def check_template(source: Any, location: str, resolve: Resolver | None, out: list[Problem]) -> None:
    """Report templates that do not parse, and roots ``resolve`` rejects."""
    for where, text in template_leaves(source, location, out):
        try:
            template = compile_template(text, where)
        except TemplateError as exc:
            out.append(Problem(exc.location, exc.message))
            continue
        if resolve is None:
            continue
        for root in sorted(template.references):
            message = resolve(root)
            if message:
                out.append(Problem(where, message))


def call_resolver(stages: Mapping[str, int], stage: Any, *, fan_out: bool = False) -> Resolver:
    """A call may read the request, the user and calls of earlier stages (and, with
    ``for_each``, ``item`` and ``index``)."""

    def resolve(root: str) -> str | None:
        if root in ALWAYS_AVAILABLE:
            return None
        if root in FAN_OUT_NAMES:
            return None if fan_out else _FAN_OUT_ONLY.format(root)
        if root == "event":
            return "'event' is only available in cache.invalidate_on tags"
        if root not in stages:
            return f"unknown call '{root}'"
        if not isinstance(stage, int) or stages[root] < stage:
            return None
        where = "the same stage" if stages[root] == stage else "a later stage"
        return f"call '{root}' runs in {where} ({stages[root]}); a call may only use calls of earlier stages"

    return resolve


def response_resolver(stages: Mapping[str, int]) -> Resolver:
    """The response and cache tags may read the request, the user and any call."""

    def resolve(root: str) -> str | None:
        if root in ALWAYS_AVAILABLE or root in stages:
            return None
        if root in FAN_OUT_NAMES:
            return _FAN_OUT_ONLY.format(root)
        if root == "event":
            return "'event' is only available in cache.invalidate_on tags"
        return f"unknown call '{root}'"

    return resolve


def event_resolver(root: str) -> str | None:
    """Invalidation tags are rendered from a webhook event, nothing else."""
    return None if root == "event" else f"unknown name '{root}'; invalidate_on tags may only use 'event'"
