"""Checks of a call's composition fields: ``when``, ``for_each``, ``max_parallel``, ``cache``.

``when`` and ``for_each`` are each one ``{{ expr }}`` (text around it would make
``when`` a string, always true, and ``for_each`` never a list); they read what
the call's other templates may read, except ``item`` and ``index``, which exist
only once ``for_each`` has given the elements. ``max_parallel`` means nothing
without ``for_each``; a per-call cache keeps only answers to safe requests (GET,
or a call marked ``idempotent``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from registry.config.problems import Problem, key_location
from registry.config.references import call_resolver, check_template

_WHOLE = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)


def check_composition(
    call: Mapping[str, Any], location: str, stages: Mapping[str, int], out: list[Problem], *, references: bool
) -> None:
    plain = call_resolver(stages, call.get("stage")) if references else None
    for key in ("when", "for_each"):
        value = call.get(key)
        if not isinstance(value, str):
            continue
        where = key_location(location, key)
        match = _WHOLE.match(value)
        if match is None or "{{" in match.group(1) or "}}" in match.group(1):
            out.append(Problem(where, f"must be one '{{{{ expr }}}}' JMESPath expression, got {value!r}"))
            continue
        check_template(value, where, plain, out)
    if "max_parallel" in call and "for_each" not in call:
        out.append(Problem(key_location(location, "max_parallel"), "only used by a call with for_each"))
    _check_cache(call, key_location(location, "cache"), stages, out, references=references)


def _check_cache(
    call: Mapping[str, Any], location: str, stages: Mapping[str, int], out: list[Problem], *, references: bool
) -> None:
    cache = call.get("cache")
    if not isinstance(cache, Mapping):
        return
    method = call.get("method", "GET")
    if isinstance(method, str) and method not in {"GET", "HEAD"} and call.get("idempotent") is not True:
        message = f"only answers to GET calls (or calls marked idempotent) are cached, this one is {method}"
        out.append(Problem(location, message))
    tags = cache.get("tags")
    if isinstance(tags, list):
        resolver = call_resolver(stages, call.get("stage"), fan_out="for_each" in call) if references else None
        check_template(tags, key_location(location, "tags"), resolver, out)
