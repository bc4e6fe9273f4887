"""Sessions, users and messages only where a person with a browser can be.

The admin, the console and ``/health/downstream`` (which shows details to a
staff session) need Django's session, authentication and messages middleware;
aggregate endpoints and the other machine paths never read them, yet paid for
them on every request (bench/README.md: session middleware showed in the
profile of an API request). Each class here *is* the Django middleware (a
subclass, so the admin's system checks still find it) and steps aside for
paths outside ``SITE_PATH_PREFIXES``.

CSRF stays on every path: it costs little, and a state-changing request to a
view that is not ``csrf_exempt`` must keep being refused without a token.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest

SITE_PATH_PREFIXES = ("/admin/", "/console/", "/health/", "/api/admin/")


def is_site_path(path: str) -> bool:
    return path.startswith(SITE_PATH_PREFIXES)


class SiteSessionMiddleware(SessionMiddleware):
    def __call__(self, request: HttpRequest) -> Any:
        if not is_site_path(request.path_info):
            return self.get_response(request)
        return super().__call__(request)


class SiteAuthenticationMiddleware(AuthenticationMiddleware):
    def __call__(self, request: HttpRequest) -> Any:
        if not is_site_path(request.path_info):
            return self.get_response(request)
        return super().__call__(request)


class SiteMessageMiddleware(MessageMiddleware):
    def __call__(self, request: HttpRequest) -> Any:
        if not is_site_path(request.path_info):
            return self.get_response(request)
        return super().__call__(request)
