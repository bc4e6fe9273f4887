"""``lower_headers`` reads ``META`` directly; what it returns is what Django's
``request.headers`` names, lower-cased (the edge's auth and the plan's templates read it)."""

from __future__ import annotations

from django.test import RequestFactory

from orchestration.web.client_request import lower_headers


def test_the_same_names_and_values_as_django_request_headers() -> None:
    request = RequestFactory().post(
        "/v1/checkout/summary?x=1",
        b'{"cartId": "c-1"}',
        content_type="application/json; charset=utf-8",
        HTTP_AUTHORIZATION="Bearer t",
        HTTP_X_REQUEST_ID="r-1",
        HTTP_X_CUSTOM_MULTI_WORD_NAME="v",
        HTTP_ACCEPT_LANGUAGE="de",
        HTTP_TRACEPARENT="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
    request.META["HTTP_X_ÄUSSERST"] = "non-ascii name"  # no server sends it; the names must still agree
    expected = {name.lower(): value for name, value in request.headers.items()}
    assert lower_headers(request) == expected
    assert expected["content-type"] == "application/json; charset=utf-8"
    assert expected["content-length"] == "17"
    assert expected["x-custom-multi-word-name"] == "v"
    assert "path-info" not in expected and "server-name" not in expected


def test_built_once_per_request() -> None:
    request = RequestFactory().get("/v1/cart/1", HTTP_X_A="1")
    first = lower_headers(request)
    request.META["HTTP_X_B"] = "2"
    assert lower_headers(request) is first
