"""A/B for bench/micro.py --ab: B = the request's lower-cased headers read from ``META``
(``client_request._lower_headers_of``), A = through Django's ``request.headers`` (before round 8)."""

from typing import Any

from django.http.request import HttpHeaders

from orchestration.web import client_request

_meta = client_request._lower_headers_of


def _through_http_headers(meta: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in HttpHeaders(meta).items()}


def toggle(on: bool) -> None:
    client_request._lower_headers_of = _meta if on else _through_http_headers
