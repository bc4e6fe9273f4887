"""Templated downstream headers carry only what the wire can: a value with
non-ASCII or control characters fails the request with 400 naming the call,
before the stage sends anything (no header injection, no crash)."""

from __future__ import annotations

import pytest

from orchestration.context import RequestContext
from orchestration.errors import BadRequest
from orchestration.executor import Success
from orchestration.plan import DownstreamAuth, Service
from tests.orchestration.engine_kit import Gateway, call, endpoint, service


def asking(name: str, authorization: str | None = None) -> RequestContext:
    return RequestContext(method="GET", query={"name": name}, request_id="req-1", authorization=authorization)


def named_endpoint():  # type: ignore[no-untyped-def]
    return endpoint(
        call("profile", headers={"X-Name": "{{ request.query.name }}", "X-Channel": "mobile"}),
        call("audit"),  # same stage: must not be called either
    )


def test_a_plain_ascii_value_is_sent(clock, downstream) -> None:  # type: ignore[no-untyped-def]
    gateway = Gateway([service("profile"), service("audit")], downstream, clock)
    result = gateway.executor.run(named_endpoint(), asking("Jose Maria\t(2)"))
    assert isinstance(result, Success)
    assert downstream.requests_to("profile")[0].headers["X-Name"] == "Jose Maria\t(2)"


@pytest.mark.parametrize(
    "name", ["José", "a\r\nX-Injected: 1", "line\nbreak", "nul\x00", "bell\x07", "del\x7f", "日本"]
)
def test_a_value_the_wire_cannot_carry_is_400_before_any_call(clock, downstream, name: str) -> None:  # type: ignore[no-untyped-def]
    gateway = Gateway([service("profile"), service("audit")], downstream, clock)
    with pytest.raises(BadRequest) as refused:
        gateway.executor.run(named_endpoint(), asking(name))
    assert refused.value.status == 400
    assert refused.value.message == (
        "Call 'profile' cannot be made: header X-Name would carry a non-ASCII or control character"
    )
    assert downstream.hits == {}


def test_a_forwarded_authorization_the_wire_cannot_carry_is_not_sent(clock, downstream) -> None:  # type: ignore[no-untyped-def]
    forwarding = Service("profile", "http://profile.test", auth=DownstreamAuth(type="bearer_forward"))
    gateway = Gateway([forwarding], downstream, clock)
    ep = endpoint(call("profile"))
    assert isinstance(gateway.executor.run(ep, asking("x", "Bearer t\u00e9\r\nX-Injected: 1")), Success)
    assert isinstance(gateway.executor.run(ep, asking("x", "Bearer plain-token")), Success)
    sent = [request.headers.get("Authorization") for request in downstream.requests_to("profile")]
    assert sent == [None, "Bearer plain-token"]
