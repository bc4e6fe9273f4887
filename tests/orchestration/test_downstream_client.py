"""The per-service client: auth kinds, headers, body limits, cookies, Retry-After."""

from __future__ import annotations

import httpx
import pytest

from orchestration.clock import FakeClock
from orchestration.context import RequestContext
from orchestration.downstream import DownstreamPool, RequestSpec
from orchestration.outcome import Outcome, OutcomeKind
from orchestration.plan import DownstreamAuth, Service
from tests.orchestration.engine_kit import FakeDownstream, service

SPEC = RequestSpec(method="GET", path="/thing", request_id="req-9", client_authorization="Bearer from-client")


def _attempt(svc: Service, downstream: FakeDownstream, *, environ=None, spec=SPEC, **pool_options) -> Outcome:  # type: ignore[no-untyped-def]
    pool = DownstreamPool(
        {svc.name: svc}, downstream.transport_for, clock=FakeClock(), environ=environ or {}, **pool_options
    )
    return pool.client(svc.name).attempt(spec, 1.0)


@pytest.mark.parametrize(
    ("auth", "environ", "expected"),
    [
        (DownstreamAuth(), {}, None),
        (DownstreamAuth(type="bearer_forward"), {}, "Bearer from-client"),
        (DownstreamAuth(type="bearer", token_env="CART_TOKEN"), {"CART_TOKEN": "s3cret"}, "Bearer s3cret"),
    ],
    ids=["none", "bearer_forward", "bearer"],
)
def test_authorization_is_set_only_by_the_auth_type(auth, environ, expected, downstream):
    _attempt(service("cart", auth=auth), downstream, environ=environ)
    assert downstream.requests[0].headers.get("authorization") == expected


def test_api_key_goes_in_its_header(downstream):
    auth = DownstreamAuth(type="api_key", header="X-Cart-Key", key_env="CART_KEY")
    _attempt(service("cart", auth=auth), downstream, environ={"CART_KEY": "k-1"})
    headers = downstream.requests[0].headers
    assert headers["x-cart-key"] == "k-1"
    assert "authorization" not in headers


def test_secrets_are_read_at_call_time(downstream):
    environ = {"CART_TOKEN": "old"}
    svc = service("cart", auth=DownstreamAuth(type="bearer", token_env="CART_TOKEN"))
    pool = DownstreamPool({"cart": svc}, downstream.transport_for, clock=FakeClock(), environ=environ)
    pool.client("cart").attempt(SPEC, 1.0)
    environ["CART_TOKEN"] = "rotated"
    pool.client("cart").attempt(SPEC, 1.0)
    assert [r.headers["authorization"] for r in downstream.requests] == ["Bearer old", "Bearer rotated"]


def test_a_missing_secret_sends_nothing(downstream):
    svc = service("cart", auth=DownstreamAuth(type="bearer", token_env="CART_TOKEN"))
    outcome = _attempt(svc, downstream, environ={})
    assert outcome.kind is OutcomeKind.MISCONFIGURED
    assert "CART_TOKEN" in outcome.detail
    assert downstream.hits == {}


def test_bearer_forward_without_a_client_token_sends_none(downstream):
    spec = RequestSpec(method="GET", path="/thing", request_id="r")
    _attempt(service("cart", auth=DownstreamAuth(type="bearer_forward")), downstream, spec=spec)
    assert "authorization" not in downstream.requests[0].headers


def test_x_request_id_always_goes_downstream(downstream):
    _attempt(service("cart"), downstream)
    assert downstream.requests[0].headers["x-request-id"] == "req-9"


def test_configured_headers_cannot_set_auth_host_or_hop_by_hop(downstream, request_context: RequestContext):
    from orchestration.downstream.request import build_request
    from tests.orchestration.engine_kit import call

    configured = {
        "Authorization": "{{ request.headers.authorization }}",
        "Connection": "close",
        "X-Request-ID": "spoofed",
        "X-Ok": "{{ user.sub }}",
    }
    spec = build_request(call("cart", headers=configured), request_context.template_context(), request_context)
    assert dict(spec.headers) == {"X-Ok": "u-7"}


def test_a_body_over_the_limit_is_bad_body(downstream):
    downstream.on("cart", lambda r: httpx.Response(200, content=b'"' + b"x" * 2048 + b'"'))
    outcome = _attempt(service("cart"), downstream, max_body_bytes=1024)
    assert (outcome.kind, outcome.is_breaker_failure) == (OutcomeKind.BAD_BODY, True)


def test_cookies_set_by_a_service_are_never_sent_back(downstream):
    downstream.on("cart", lambda r: httpx.Response(200, json={}, headers={"Set-Cookie": "session=user-a; Path=/"}))
    svc = service("cart")
    pool = DownstreamPool({"cart": svc}, downstream.transport_for, clock=FakeClock(), environ={})
    pool.client("cart").attempt(SPEC, 1.0)
    pool.client("cart").attempt(SPEC, 1.0)
    assert "cookie" not in downstream.requests[1].headers


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12", 12.0), ("Wed, 21 Oct 2099 07:28:00 GMT", None), ("soon", None), ("", None)],
)
def test_retry_after_is_parsed_on_429(value, expected, downstream):
    headers = {"Retry-After": value} if value else {}
    downstream.on("cart", lambda r: httpx.Response(429, headers=headers))
    outcome = _attempt(service("cart"), downstream)
    assert (outcome.kind, outcome.status) == (OutcomeKind.BAD_STATUS, 429)
    if value.startswith("Wed"):
        assert outcome.retry_after_s is not None and outcome.retry_after_s > 1e6
    else:
        assert outcome.retry_after_s == expected


def test_4xx_and_refusals_do_not_count_for_the_breaker(downstream):
    downstream.on("cart", lambda r: httpx.Response(404))
    assert not _attempt(service("cart"), downstream).is_breaker_failure
    for kind in (OutcomeKind.CIRCUIT_OPEN, OutcomeKind.BULKHEAD_FULL, OutcomeKind.MISCONFIGURED):
        assert not Outcome(kind).is_breaker_failure


@pytest.mark.parametrize("encoding", ["gzip", "deflate", None])
def test_an_encoded_body_is_decoded_and_a_plain_one_read_as_is(encoding: str | None) -> None:
    import gzip
    import zlib

    raw = b'{"ok": true, "n": [1, 2, 3]}'
    body = {"gzip": gzip.compress, "deflate": zlib.compress, None: lambda data: data}[encoding](raw)
    headers = {"Content-Type": "application/json", **({"Content-Encoding": encoding} if encoding else {})}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, headers=headers, content=body))
    pool = DownstreamPool({"cart": service("cart")}, lambda _: transport, clock=FakeClock(), environ={})
    outcome = pool.client("cart").attempt(SPEC, 1.0)
    assert outcome.kind is OutcomeKind.OK and outcome.body == {"ok": True, "n": [1, 2, 3]}


@pytest.mark.parametrize(
    "spec",
    [
        RequestSpec(method="GET", path="/a/b%2Fc", params=(("q", "1"), ("q", "é"))),
        RequestSpec(method="POST", path="/p", json_body={"items": [{"sku": "é", "n": 1.5}], "x": None}, has_body=True),
        RequestSpec(method="POST", path="/p", json_body=None, has_body=True),  # a body template that rendered null
        RequestSpec(method="PUT", path="/p", json_body=[1, "two"], has_body=True, headers=(("Content-Type", "x/y"),)),
        RequestSpec(method="DELETE", path="/d", headers=(("X-Trace", "t"),)),
    ],
    ids=["get with query", "post json", "post null body", "put with content type", "delete"],
)
def test_the_request_sent_is_the_one_an_httpx_client_would_build(spec: RequestSpec) -> None:
    """Same method, URL, header list (names, order, values) and body bytes as
    ``httpx.Client(base_url=..., headers=...).build_request``."""
    from orchestration.downstream.client import _BASE_HEADERS

    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200, json={}))
    svc = service("cart")
    pool = DownstreamPool({"cart": svc}, lambda _: transport, clock=FakeClock(), environ={})
    assert pool.client("cart").attempt(spec, 1.0).kind is OutcomeKind.OK
    headers = {**dict(spec.headers), "X-Request-ID": spec.request_id} if spec.request_id else dict(spec.headers)
    with httpx.Client(base_url=svc.base_url, headers=_BASE_HEADERS) as client:
        expected = client.build_request(
            spec.method,
            spec.path,
            params=list(spec.params) or None,
            headers=headers,
            json=spec.json_body if spec.has_body else None,
        )
    [request] = sent
    assert (request.method, request.url) == (expected.method, expected.url)
    assert request.headers.raw == expected.headers.raw
    assert request.read() == expected.read()
