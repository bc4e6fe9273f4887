"""The WSGI handler remembers each path's URL match (``GatewayWSGIHandler.resolve_request``):
a repeated path is not resolved again, a new URLconf is obeyed, an unknown path is
still a 404 every time."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import URLResolver, path

from gateway_project import wsgi_request
from gateway_project.wsgi_request import GatewayWSGIHandler

# The handler sends request_started, whose close_old_connections checks any connection an
# earlier test of the session left open: database access allowed, none made by these tests.
pytestmark = pytest.mark.django_db


def _first(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"first {request.resolver_match.url_name}")  # type: ignore[union-attr]


def _second(request: HttpRequest, name: str) -> HttpResponse:
    return HttpResponse(f"second {name}")


urlpatterns = [path("one", _first, name="one")]


class OtherUrls:
    urlpatterns = [path("one/<str:name>", _second, name="two")]


def _get(handler: GatewayWSGIHandler, path_info: str) -> tuple[str, bytes]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path_info,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
    }
    statuses: list[str] = []
    result: Any = handler(environ, lambda status, headers, exc_info=None: statuses.append(status))
    body = b"".join(result)
    result.close()
    return statuses[0], body


@pytest.fixture
def resolves(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths the URL resolver was asked to resolve from the top (each a real resolve)."""
    wsgi_request._resolved.cache_clear()
    seen: list[str] = []
    original = URLResolver.resolve

    def counting(self: URLResolver, path_info: str) -> Any:
        if self.pattern.regex.pattern == "^/":  # the root resolver
            seen.append(path_info)
        return original(self, path_info)

    monkeypatch.setattr(URLResolver, "resolve", counting)
    return seen


@override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=[])
def test_a_repeated_path_is_resolved_once(resolves: list[str]) -> None:
    handler = GatewayWSGIHandler()
    assert [_get(handler, "/one") for _ in range(3)] == [("200 OK", b"first one")] * 3
    assert resolves == ["/one"]


@override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=[])
def test_an_unknown_path_is_a_404_every_time(resolves: list[str]) -> None:
    handler = GatewayWSGIHandler()
    assert [_get(handler, "/nowhere")[0] for _ in range(2)] == ["404 Not Found"] * 2
    assert resolves == ["/nowhere", "/nowhere"]


@override_settings(MIDDLEWARE=[])
def test_a_new_urlconf_is_obeyed(resolves: list[str]) -> None:
    with override_settings(ROOT_URLCONF=__name__):
        assert _get(GatewayWSGIHandler(), "/one") == ("200 OK", b"first one")
    with override_settings(ROOT_URLCONF=OtherUrls):
        handler = GatewayWSGIHandler()
        assert _get(handler, "/one")[0] == "404 Not Found"
        assert _get(handler, "/one/x") == ("200 OK", b"second x")
