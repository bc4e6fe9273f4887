"""The aggregate view through Django's test client, on the real registry, the
real compiler and the real engine, against a fake downstream on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from django.test import Client

from gateway_project import wiring
from tests.support.configured import configured

JWT_ENV = "SERVING_TEST_JWT_SECRET"
JWT_SECRET = "serving-tests-secret-0123456789abcdef"


class Downstream:
    """A loopback service: /carts/<id> and /prices answer JSON; counts hits."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.seen_headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.hits[self.path] += 1
                outer.seen_headers.append({k.lower(): v for k, v in self.headers.items()})
                known = self.path.startswith(("/carts/c-", "/carts/warm"))
                status, body = (200, {"items": [1, 2, 3]}) if known else (404, {})
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def downstream() -> Iterator[Downstream]:
    fake = Downstream()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def document(base_url: str) -> dict[str, Any]:
    return {
        "version": 1,
        "layer": {
            "name": "Serving tests",
            "base_path": "/v1/shop",
            "auth": {"type": "jwt", "jwt": {"algorithms": ["HS256"], "secret_env": JWT_ENV}},
        },
        "services": {"cart": {"base_url": base_url, "timeout_ms": 1000}},
        "endpoints": [
            {
                "name": "cart-view",
                "method": "GET",
                "path": "/carts/{cart_id}",
                "purpose": "Cart screen",
                "timeout_ms": 2000,
                "calls": [
                    {
                        "id": "cart",
                        "service": "cart",
                        "stage": 1,
                        "method": "GET",
                        "path": "/carts/{{ request.path.cart_id }}",
                        "required": True,
                    }
                ],
                "response": {
                    "items": "{{ cart.items }}",
                    "count": "{{ length(cart.items) }}",
                    "user": "{{ user.sub }}",
                },
            },
            {
                "name": "echo",
                "method": "POST",
                "path": "/echo",
                "calls": [
                    {
                        "id": "cart",
                        "service": "cart",
                        "stage": 1,
                        "method": "GET",
                        "path": "/carts/{{ request.body.id }}",
                        "required": True,
                    }
                ],
                "response": {"count": "{{ length(cart.items) }}"},
            },
        ],
    }


@pytest.fixture
def served(db: None, downstream: Downstream, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[Downstream]:
    monkeypatch.setenv(JWT_ENV, JWT_SECRET)
    settings.GATEWAY = {**settings.GATEWAY, "MAX_BODY_BYTES": 2048}
    with configured(document(downstream.url), "cart"):  # the breaker's state is shared through Redis
        yield downstream


def bearer(sub: str = "42") -> dict[str, str]:
    token = jwt.encode({"sub": sub, "exp": int(time.time()) + 300}, JWT_SECRET, algorithm="HS256")
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "data"}
    assert body["data"] == {}
    assert body["error"]["code"] == code
    assert body["error"]["requestId"] == response["X-Request-ID"]
    assert set(body["error"]) == {"code", "message", "failedServices", "partialData", "requestId"}
    return body


def test_served_request_assembles_the_response_and_sends_request_id(served: Downstream) -> None:
    response = Client().get("/v1/shop/carts/c-1", headers={"X-Request-ID": "abc-123"}, **bearer("7"))
    assert response.status_code == 200
    assert response.json() == {"items": [1, 2, 3], "count": 3, "user": "7"}
    assert response["X-Request-ID"] == "abc-123"
    assert served.hits["/carts/c-1"] == 1
    assert served.seen_headers[-1]["x-request-id"] == "abc-123"
    assert "authorization" not in served.seen_headers[-1]  # auth type none: the client's token stays here


def test_a_served_aggregate_request_makes_no_database_query(
    served: Downstream, django_assert_num_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in a gunicorn worker, where the config poller reads the version off the request path.
    monkeypatch.setattr(wiring.runtime_holder(), "checks_on_request", False)
    client = Client()
    assert client.get("/v1/shop/carts/warm", **bearer()).status_code == 200  # compiles the plan once
    with django_assert_num_queries(0):
        assert client.get("/v1/shop/carts/c-2", **bearer()).status_code == 200
    assert served.hits["/carts/c-2"] == 1


def test_insane_request_ids_are_replaced(served: Downstream) -> None:
    response = Client().get("/v1/shop/carts/c-1", headers={"X-Request-ID": "bad id\twith spaces"}, **bearer())
    assert response.status_code == 200
    assert response["X-Request-ID"] != "bad id\twith spaces"
    assert len(response["X-Request-ID"]) == 32


def test_unknown_path_and_wrong_method_get_the_envelope(served: Downstream) -> None:
    assert_envelope(Client().get("/v1/shop/nowhere", **bearer()), 404, "NOT_FOUND")
    response = Client().delete("/v1/shop/carts/c-1", **bearer())
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert response["Allow"] == "GET"
    assert sum(served.hits.values()) == 0


def test_missing_or_bad_token_is_401_and_calls_nothing(served: Downstream) -> None:
    missing = Client().get("/v1/shop/carts/c-1")
    assert_envelope(missing, 401, "UNAUTHENTICATED")
    assert missing["WWW-Authenticate"] == 'Bearer realm="gateway"'
    bad = {
        "HTTP_AUTHORIZATION": "Bearer "
        + jwt.encode({"sub": "1", "exp": 9999999999}, "wrong-secret-0123456789abcdef-0123456789")
    }
    assert_envelope(Client().get("/v1/shop/carts/c-1", **bad), 401, "UNAUTHENTICATED")
    assert sum(served.hits.values()) == 0


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"{not json", 400, "BAD_REQUEST"),
        (b"[" * 100 + b"]" * 100, 400, "BAD_REQUEST"),  # deeper than GATEWAY_MAX_JSON_DEPTH
        (json.dumps({"id": "x" * 4096}).encode(), 413, "PAYLOAD_TOO_LARGE"),
    ],
)
def test_bad_bodies_get_the_envelope_and_call_nothing(
    served: Downstream, payload: bytes, status: int, code: str
) -> None:
    response = Client().post("/v1/shop/echo", data=payload, content_type="application/json", **bearer())
    assert_envelope(response, status, code)
    assert sum(served.hits.values()) == 0


def test_downstream_404_is_a_client_error_without_internal_urls(served: Downstream) -> None:
    response = Client().post("/v1/shop/echo", data={"id": "../../admin"}, content_type="application/json", **bearer())
    # The id is one encoded path segment: the downstream saw /carts/%2E%2E%2F..., answered 404.
    body = assert_envelope(response, 404, "DOWNSTREAM_CLIENT_ERROR")
    assert body["error"]["failedServices"] == ["cart"]
    assert served.url not in response.content.decode()
    assert list(served.hits) == ["/carts/%2E%2E%2F%2E%2E%2Fadmin"]


def test_openapi_documents_the_served_endpoints(served: Downstream) -> None:
    response = Client().get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    operation = document["paths"]["/v1/shop/carts/{cart_id}"]["get"]
    assert operation["summary"] == "Cart screen"
    assert operation["parameters"] == [
        {"name": "cart_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    assert set(operation["responses"]["200"]["content"]["application/json"]["schema"]["properties"]) >= {
        "items",
        "count",
    }
    assert "post" in document["paths"]["/v1/shop/echo"]
    assert "ErrorEnvelope" in document["components"]["schemas"]
