"""Issue 11 item 4 through real gunicorn: client input that produced a 500 — some of
it before Django's middleware ran, where gunicorn answered a bare HTML 500 — gets
the contract's envelope, and a client sending bad tokens is rate limited by IP.
A request gunicorn itself cannot parse gets the envelope too (``gunicorn_worker``).

One gateway serves the module (database ``<DATABASE_URL's name>_fuzz``, Redis db
offset 15): client auth is JWT with ``algorithms: [RS256, ES256]`` and an RSA public
key file; one fake service on loopback counts its hits. Requests are written with
``http.client`` so that headers go out exactly as given.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.e2e.client import HttpReply
from tests.e2e.conftest import GatewayServer, isolated_targets
from tests.support.fake_downstream import FakeDownstream

pytestmark = pytest.mark.e2e

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def config(service_url: str, key_file: Path) -> str:
    return f"""
version: 1
layer:
  name: Client input e2e
  base_path: /v1
  auth:
    type: jwt
    jwt: {{algorithms: [RS256, ES256], public_key_file: {key_file}}}
services:
  profile: {{base_url: "{service_url}", timeout_ms: 2000}}
endpoints:
  - name: profile
    method: GET
    path: /profile/{{user_id}}
    calls:
      - {{id: profile, service: profile, stage: 1, method: GET, path: "/users/{{{{ request.path.user_id }}}}",
         headers: {{X-Name: "{{{{ request.query.name }}}}"}}}}
    response: {{user: "{{{{ profile }}}}"}}
  - name: limited
    method: GET
    path: /limited
    rate_limits: [{{scope: ip, limit: 3, window_s: 60}}]
    calls:
      - {{id: profile, service: profile, stage: 1, method: GET, path: /users/limited}}
    response: {{user: "{{{{ profile }}}}"}}
"""


def bearer(private: Any, alg: str) -> str:
    return "Bearer " + jwt.encode({"sub": "e2e-user", "exp": int(time.time()) + 600}, private, algorithm=alg)


VALID = bearer(RSA_KEY, "RS256")


@pytest.fixture(scope="module")
def service(module_fake_downstream: Callable[[dict[str, Any]], FakeDownstream]) -> FakeDownstream:
    return module_fake_downstream({"*": (200, {"name": "Ada"})})


@pytest.fixture(scope="module")
def gateway(
    module_gateway_server: Callable[..., GatewayServer],
    service: FakeDownstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> GatewayServer:
    key_file = tmp_path_factory.mktemp("keys") / "rsa-public.pem"
    key_file.write_bytes(
        RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    database, redis_db = isolated_targets("fuzz", 15)
    return module_gateway_server(config(service.url, key_file), database=database, redis_db=redis_db)


def send(gateway: GatewayServer, method: str, target: str, headers: dict[str, str]) -> HttpReply:
    host, port = gateway.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        connection.putrequest(method, target, skip_host="Host" in headers, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return HttpReply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def assert_envelope(reply: HttpReply, status: int, code: str) -> None:
    assert reply.status == status, reply.raw[:300]
    body = json.loads(reply.raw)
    assert body["data"] == {} and body["error"]["code"] == code
    assert body["error"]["requestId"] == reply.headers["x-request-id"]


def test_a_token_whose_algorithm_does_not_fit_the_key_is_401(gateway: GatewayServer, service: FakeDownstream) -> None:
    before = sum(service.hits.values())
    forged = bearer(ec.generate_private_key(ec.SECP256R1()), "ES256")
    assert_envelope(send(gateway, "GET", "/v1/profile/u1", {"Authorization": forged}), 401, "UNAUTHENTICATED")
    assert sum(service.hits.values()) == before


def test_a_charset_that_is_not_a_text_encoding_is_served(gateway: GatewayServer) -> None:
    for charset in ("rot13", "zlib"):
        headers = {"Authorization": VALID, "Content-Type": f"text/plain; charset={charset}"}
        reply = send(gateway, "GET", "/v1/profile/u1?name=Ada", headers)
        assert reply.status == 200, reply.raw[:300]
        assert reply.json() == {"user": {"name": "Ada"}}


def test_more_than_1000_query_parameters_is_a_400_envelope(gateway: GatewayServer, service: FakeDownstream) -> None:
    before = sum(service.hits.values())
    many = "&".join(["a="] * 1001)  # short enough for gunicorn's request line limit
    for content_type in ({}, {"Content-Type": "application/json; charset=utf-8"}):
        reply = send(gateway, "GET", f"/v1/profile/u1?{many}", {"Authorization": VALID, **content_type})
        assert_envelope(reply, 400, "BAD_REQUEST")
    assert sum(service.hits.values()) == before


def test_a_templated_header_with_non_ascii_is_a_400_envelope(gateway: GatewayServer, service: FakeDownstream) -> None:
    before = sum(service.hits.values())
    reply = send(gateway, "GET", "/v1/profile/u1?name=Jos%C3%A9", {"Authorization": VALID})
    assert_envelope(reply, 400, "BAD_REQUEST")
    assert json.loads(reply.raw)["error"]["message"].startswith("Call 'profile' cannot be made")
    assert sum(service.hits.values()) == before


def test_a_host_not_allowed_and_a_newline_in_the_path_get_envelopes(gateway: GatewayServer) -> None:
    assert_envelope(
        send(gateway, "GET", "/v1/profile/u1", {"Host": "evil.example", "Authorization": VALID}), 400, "BAD_REQUEST"
    )
    assert_envelope(send(gateway, "GET", "/v1/limited%0A", {"Authorization": VALID}), 404, "NOT_FOUND")


def test_bad_tokens_count_against_the_ip_limit(gateway: GatewayServer, service: FakeDownstream) -> None:
    forged = {"Authorization": bearer(ec.generate_private_key(ec.SECP256R1()), "ES256")}
    statuses = [send(gateway, "GET", "/v1/limited", forged).status for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    reply = send(gateway, "GET", "/v1/limited", {"Authorization": VALID})  # the same IP, now with a good token
    assert_envelope(reply, 429, "RATE_LIMITED")
    assert int(reply.headers["retry-after"]) >= 1
    assert service.hits["/users/limited"] == 0


def raw_exchange(gateway: GatewayServer, request: bytes) -> HttpReply:
    """``request`` written as given (no client library would send these), the answer read to its end."""
    host, port = gateway.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return HttpReply(int(status_line.split()[1]), headers, body)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"THIS IS NOT HTTP\r\n\r\n", 400),
        (b"GET /v1/profile/u1 HTTP/1.1\r\nHost: localhost\r\nBad Header Name: x\r\n\r\n", 400),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414),
        (b"GET /v1/profile/u1 HTTP/1.1\r\nHost: localhost\r\n" + b"X-Many: 1\r\n" * 120 + b"\r\n", 431),
    ],
    ids=["garbled request line", "bad header name", "request line too long", "too many headers"],
)
def test_a_request_gunicorn_cannot_parse_gets_the_envelope_not_html(
    gateway: GatewayServer, service: FakeDownstream, request_bytes: bytes, status: int
) -> None:
    hits = sum(service.hits.values())
    reply = raw_exchange(gateway, request_bytes)
    assert_envelope(reply, status, "BAD_REQUEST")
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["connection"] == "close"
    assert reply.json()["error"]["message"].startswith("Malformed HTTP request")
    assert sum(service.hits.values()) == hits  # nothing reached a downstream
