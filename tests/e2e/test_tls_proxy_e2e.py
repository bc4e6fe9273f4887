"""Through gunicorn: with GATEWAY_TLS_PROXY=on, X-Forwarded-Proto counts only from a trusted
proxy. gunicorn believes the header from loopback by itself (its forwarded_allow_ips), so
here the trusted proxy is 127.0.0.2 and a client on 127.0.0.1 must not pass for HTTPS."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import GatewayServer, isolated_targets
from tests.e2e.ops_config import ops_config

pytestmark = pytest.mark.e2e

PROXY, CLIENT = "127.0.0.2", "127.0.0.1"


def _get(server: GatewayServer, source: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    port = urlsplit(server.base_url).port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", "/admin/login/", headers=headers)
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


def test_only_the_trusted_proxy_makes_a_request_https(gateway_server: Callable[..., GatewayServer]) -> None:
    database, redis_db = isolated_targets("smaller", 10)
    unused = "http://127.0.0.1:9"
    server = gateway_server(
        ops_config(cart=unused, shipping=unused),
        {"GATEWAY_TLS_PROXY": "on", "GATEWAY_TRUSTED_PROXIES": PROXY, "ALLOWED_HOSTS": "gw.example.com,127.0.0.1"},
        workers=1,
        database=database,
        redis_db=redis_db,
    )
    https = {"Host": "gw.example.com", "X-Forwarded-Proto": "https"}

    via_proxy = _get(server, PROXY, https)
    direct = _get(server, CLIENT, https)

    assert via_proxy.status == 200
    assert via_proxy.getheader("Strict-Transport-Security") == "max-age=31536000"
    assert "; Secure" in via_proxy.getheader("Set-Cookie", "")  # csrftoken
    assert direct.status == 200
    assert direct.getheader("Strict-Transport-Security") is None
