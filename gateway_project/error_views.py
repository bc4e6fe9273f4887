"""Django's own error answers, as the contract's envelope on API paths.

Django answers some requests before or around our views: a Host header not in
``ALLOWED_HOSTS`` (DisallowedHost, raised by CommonMiddleware) or another
SuspiciousOperation is a 400, an unmatched URL a 404, an exception outside the
views a 500. Its default pages are HTML; a client of the gateway gets the
envelope (``{"error": {...}, "data": {}}`` with its request id) like every other
error. The admin and the console keep Django's pages.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views import defaults

from gateway_project.middleware import is_site_path
from orchestration.errors import BadRequest, GatewayError, NotFound
from orchestration.web.aggregate import error_response
from orchestration.web.client_request import request_id_of


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_site_path(request.path_info):
        return defaults.bad_request(request, exception)
    return error_response(BadRequest(), request_id=request_id_of(request))


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_site_path(request.path_info):
        return defaults.page_not_found(request, exception)
    return error_response(NotFound(), request_id=request_id_of(request))


def server_error(request: HttpRequest) -> HttpResponse:
    if is_site_path(request.path_info):
        return defaults.server_error(request)
    return error_response(GatewayError(), request_id=request_id_of(request))
