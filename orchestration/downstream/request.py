"""Turning a call's templates into the HTTP request to send.

Only what the call declares is sent, plus ``X-Request-ID``: the client's
headers are never copied, and a configured header may not set Host,
Authorization (that is the auth type's job), X-Request-ID or any hop-by-hop
header. A header value may hold only visible ASCII, spaces and tabs (RFC 9110
``field-value`` without obs-text): one that renders anything else (``José``, a
CR/LF that would inject a header, NUL) fails the request with 400 naming the
call, before the stage sends anything; so does a path hole whose value renders
null, empty, ``.`` or ``..`` (it would name another resource). Query keys whose
value renders null are left out; a list renders as repeated keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestration.context import RequestContext
from orchestration.downstream import graphql
from orchestration.errors import BadRequest
from orchestration.plan import Call, GraphqlRequest
from orchestration.templates import EmptyPathSegment

NOT_CONFIGURABLE_HEADERS = frozenset(
    {
        "host",
        "authorization",
        "x-request-id",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


@dataclass(frozen=True, slots=True)
class RequestSpec:
    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    json_body: Any = None
    has_body: bool = False
    request_id: str = ""
    client_authorization: str | None = None
    graphql: bool = False  # the answer is a GraphQL response: the call's result is its data


def build_request(call: Call, context: Mapping[str, Any], request: RequestContext) -> RequestSpec:
    if call.graphql is not None:
        return _graphql_request(call, call.graphql, context, request)
    return RequestSpec(
        method=call.method,
        path=_path(call, context),
        params=tuple(_query(call, context)),
        headers=tuple(_headers(call, context)),
        json_body=call.body.render(context) if call.body is not None else None,
        has_body=call.body is not None,
        request_id=request.request_id,
        client_authorization=_sendable(request.authorization),
    )


def _graphql_request(
    call: Call, query: GraphqlRequest, context: Mapping[str, Any], request: RequestContext
) -> RequestSpec:
    """Always a POST of {"query", "variables"}: the check refuses another method or a body."""
    return RequestSpec(
        method="POST",
        path=_path(call, context),
        params=tuple(_query(call, context)),
        headers=tuple(_headers(call, context)),
        json_body=graphql.request_body(query, context),
        has_body=True,
        request_id=request.request_id,
        client_authorization=_sendable(request.authorization),
        graphql=True,
    )


def _sendable(authorization: str | None) -> str | None:
    """The client's Authorization for ``bearer_forward``; one the wire cannot carry is not forwarded."""
    return authorization if authorization is not None and _HEADER_VALUE.fullmatch(authorization) else None


def _path(call: Call, context: Mapping[str, Any]) -> str:
    try:
        path = _text(call.path.render(context)) or "/"
    except EmptyPathSegment as empty:
        shown = f"'{empty.value}'" if empty.value else "null or empty"
        raise BadRequest(f"Call '{call.id}' cannot be made: a value in its path is {shown}") from None
    return path if path.startswith("/") else f"/{path}"


def _query(call: Call, context: Mapping[str, Any]) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    for key, template in call.query:
        value = template.render(context)
        values = value if isinstance(value, list) else [value]
        params.extend((key, _text(item)) for item in values if item is not None)
    return params


def _headers(call: Call, context: Mapping[str, Any]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for name, template in call.headers:
        value = template.render(context)
        if value is None or name.lower() in NOT_CONFIGURABLE_HEADERS:
            continue
        text = _text(value)
        if not _HEADER_VALUE.fullmatch(text):  # no header injection, no bytes the wire cannot carry
            raise BadRequest(
                f"Call '{call.id}' cannot be made: header {name} would carry a non-ASCII or control character"
            )
        headers.append((name, text))
    return headers


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
