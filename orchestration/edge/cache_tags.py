"""Cache tags: rendered per stored response, and per invalidation event.

A tag template renders over the response context (``request``, ``user`` and
each call's result); a template that renders to a list gives one tag per item
(``"sku:{{ cart.items[].sku }}"`` is not a list, ``{{ cart.items[].sku }}`` is).
An event renders each endpoint's ``invalidate_on`` rules for that event name
with the event's data as ``event``; the union of those tags is what a purge
deletes. Empty and null renderings are dropped, never stored as a tag.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from orchestration.plan import Plan
from orchestration.templates import Template


def render_tags(templates: Iterable[Template], context: Mapping[str, Any]) -> tuple[str, ...]:
    tags: list[str] = []
    for template in templates:
        value = template.render(context)
        for item in value if isinstance(value, list) else [value]:
            text = _as_tag(item)
            if text:
                tags.append(text)
    return tuple(dict.fromkeys(tags))


def tags_for_event(plan: Plan, event: str, data: Any) -> tuple[str, ...]:
    """Every tag the endpoints' ``invalidate_on`` rules render for ``event``."""
    context = {"event": data}
    tags: list[str] = []
    for endpoint in plan.endpoints:
        for rule in endpoint.cache.invalidate_on:
            if rule.event == event:
                tags.extend(render_tags(rule.tags, context))
    return tuple(dict.fromkeys(tags))


def _as_tag(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
