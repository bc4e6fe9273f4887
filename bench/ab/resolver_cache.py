"""A/B for bench/micro.py --ab: B = the URL match remembered per path
(``GatewayWSGIHandler.resolve_request``), A = Django's resolve on every request."""

from django.core.handlers.base import BaseHandler

from gateway_project.wsgi_request import GatewayWSGIHandler

_cached = GatewayWSGIHandler.resolve_request


def toggle(on: bool) -> None:
    GatewayWSGIHandler.resolve_request = _cached if on else BaseHandler.resolve_request  # type: ignore[method-assign]
