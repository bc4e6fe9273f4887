"""Read what the client sent, within limits: request id, headers, JSON body
(whose bytes ``orchestration.web.request_body`` received before admission).

Every problem becomes a ``GatewayError`` (400) so the client gets the
contract's envelope, never a traceback.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import HttpRequest
from django.http.request import HttpHeaders

from orchestration import fast_json
from orchestration.errors import BadRequest
from orchestration.json_values import encodes_as_utf8

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def request_id_of(request: HttpRequest) -> str:
    """The client's X-Request-ID when it is sane (short, no control characters), else a new one."""
    offered = request.META.get("HTTP_X_REQUEST_ID", "")  # = request.headers["X-Request-ID"], without building them all
    return offered if _SANE_REQUEST_ID.match(offered) else uuid.uuid4().hex


def lower_headers(request: HttpRequest) -> dict[str, str]:
    """The request's headers by lower-case name, built once per request (the edge's
    auth and the plan's template context both read them)."""
    cached: dict[str, str] | None = getattr(request, "_gateway_lower_headers", None)
    if cached is None:
        cached = _lower_headers_of(request.META)
        request._gateway_lower_headers = cached  # type: ignore[attr-defined]
    return cached


_HTTP_PREFIX = HttpHeaders.HTTP_PREFIX  # Django's own rules for which META keys are headers
_UNPREFIXED_HEADERS = HttpHeaders.UNPREFIXED_HEADERS


def _lower_headers_of(meta: dict[str, Any]) -> dict[str, str]:
    """What ``{name.lower(): value for name, value in request.headers.items()}`` gives
    (Django's ``HttpHeaders`` names, lower-cased), read from ``META`` directly: building
    ``request.headers`` first cost 11 µs a request against 4 (bench/README.md, round 8)."""
    headers: dict[str, str] = {}
    for key, value in meta.items():
        if key.startswith(_HTTP_PREFIX):
            key = key[len(_HTTP_PREFIX) :]
        elif key not in _UNPREFIXED_HEADERS:
            continue
        headers[key.replace("_", "-").title().lower()] = value  # title() first: HttpHeaders' names
    return headers


def query_params(request: HttpRequest) -> dict[str, str]:
    """The query string's parameters (a repeated key: its last value); more than
    ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` (Django's 1000) is a 400, never a 500."""
    try:
        query = request.GET
    except TooManyFieldsSent:
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        raise BadRequest(f"Query string has more than {limit} parameters") from None
    return {key: query[key] for key in query}


def json_body(raw: bytes, *, max_depth: int) -> Any:
    """The parsed JSON body, ``None`` when there is none (``raw`` from ``request_body``)."""
    if not raw.strip():
        return None
    try:
        # UTF-8 only (RFC 8259 8.1), strictly: no encoded surrogates. NaN and Infinity are not JSON.
        body = fast_json.loads_or(raw, _parsed_by_json)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("Request body is not valid JSON") from None
    if _depth(body) > max_depth:
        raise BadRequest(f"Request body is nested deeper than {max_depth} levels")
    if _SURROGATE_ESCAPE.search(raw) and not encodes_as_utf8(body):
        raise BadRequest("Request body is not valid JSON (a \\u escape is an unpaired surrogate)")
    return body


def _parsed_by_json(raw: bytes) -> Any:
    return json.loads(raw.decode("utf-8-sig"), parse_constant=_not_json)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _depth(value: Any) -> int:
    """Nesting depth without recursion (a hostile body cannot blow the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)
    return deepest
