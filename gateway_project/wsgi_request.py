"""Django's WSGI handler, with a request class whose constructor no client input can crash.

Django builds the request (``WSGIRequest(environ)``) before any middleware or
exception handling runs, so an exception there reaches gunicorn, which answers
a bare HTML 500. Two headers did that: a ``Content-Type`` naming a charset that is
a codec but not a text encoding (``text/plain; charset=rot13``: LookupError), and
any charset at all with more than ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` query
parameters (TooManyFieldsSent) — Django's ``encoding`` setter parses the query
string to find out whether it had been parsed. Here the charset is taken only
when it decodes text, and set without that parse; the query string is parsed
when a view first reads ``request.GET``, where its errors are the view's to answer
(the aggregate view: 400 ``BAD_REQUEST``).
"""

from __future__ import annotations

import functools
from typing import Any

from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import HttpRequest
from django.urls import ResolverMatch, URLResolver, get_resolver
from django.utils.http import parse_header_parameters


class ClientSafeRequest(WSGIRequest):
    def _set_content_type_params(self, meta: Any) -> None:
        self.content_type, self.content_params = parse_header_parameters(meta.get("CONTENT_TYPE", ""))
        charset = self.content_params.get("charset")
        if charset is not None and decodes_text(charset):
            # What Django's setter stores; nothing has been parsed yet, so nothing to reset.
            self._encoding = charset


@functools.lru_cache(maxsize=64)
def decodes_text(charset: str) -> bool:
    """Whether ``charset`` can decode and encode text with errors replaced (not zlib,
    rot13 or idna): what parsing a query string or a form with it will ask."""
    try:
        b"a=%C3%A9&\xff".decode(charset, "replace")
        "a=é".encode(charset, "replace")
    except (LookupError, ValueError):  # UnicodeError is a ValueError
        return False
    return True


_RESOLVED_PATHS = 1024  # distinct paths remembered per URLconf (most traffic repeats a few)


@functools.lru_cache(maxsize=_RESOLVED_PATHS)
def _resolved(resolver: URLResolver, path: str) -> ResolverMatch:
    """A path's match, once per (URLconf, path). The URLconf is fixed once loaded (a new
    ``ROOT_URLCONF`` is a new resolver, hence a new key); a path that resolves to nothing
    raises every time (exceptions are not remembered)."""
    return resolver.resolve(path)


class GatewayWSGIHandler(WSGIHandler):
    request_class = ClientSafeRequest

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        """Django's, with the match remembered per path: resolving the checkout walked ten
        patterns and two nested resolvers on every request (bench/README.md, round 8)."""
        if hasattr(request, "urlconf"):  # a middleware chose a URLconf: Django's way
            return super().resolve_request(request)
        match = _resolved(get_resolver(), request.path_info)
        request.resolver_match = match
        return match
