"""Invalidation requests: what a webhook may ask for, and the tags it purges.

Two forms (contract section 4): ``{"event": "user.updated", "data": {...}}``,
which purges the tags every endpoint's ``invalidate_on`` rules render for that
event, and ``{"tags": ["catalog"]}``, which purges those tags as given. The
payload is checked here, before anything is queued, so a worker never sees a
malformed one; the normalised payload is what travels to the task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestration.edge.cache_tags import tags_for_event
from orchestration.errors import BadRequest
from orchestration.plan import Plan

MAX_TAGS = 1000
MAX_TAG_CHARS = 512


def parse_invalidation(payload: Any) -> dict[str, Any]:
    """The normalised payload, or ``BadRequest`` saying what is wrong."""
    if not isinstance(payload, Mapping):
        raise BadRequest('Body must be a JSON object with "event" or "tags"')
    if "tags" in payload:
        tags = payload["tags"]
        if not isinstance(tags, list) or not 0 < len(tags) <= MAX_TAGS:
            raise BadRequest(f'"tags" must be a list of 1 to {MAX_TAGS} strings')
        if not all(isinstance(tag, str) and 0 < len(tag) <= MAX_TAG_CHARS for tag in tags):
            raise BadRequest(f"every tag must be a non-empty string of at most {MAX_TAG_CHARS} characters")
        return {"tags": list(dict.fromkeys(tags))}
    event, data = payload.get("event"), payload.get("data", {})
    if not isinstance(event, str) or not event:
        raise BadRequest('"event" must be a non-empty string (or send "tags")')
    if not isinstance(data, Mapping):
        raise BadRequest('"data" must be a JSON object')
    return {"event": event, "data": dict(data)}


def tags_to_purge(plan: Plan, invalidation: Mapping[str, Any]) -> tuple[str, ...]:
    if "tags" in invalidation:
        return tuple(invalidation["tags"])
    return tags_for_event(plan, invalidation["event"], invalidation.get("data", {}))
