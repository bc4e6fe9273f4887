import pytest

from orchestration.plan import Endpoint, Layer, Plan
from orchestration.routing import NoRoute, Router
from orchestration.templates import compile_template


def endpoint(name: str, method: str, path: str) -> Endpoint:
    return Endpoint(name=name, method=method, path=path, calls=(), response=compile_template({}))


PLAN = Plan(
    version="1",
    layer=Layer(name="t", base_path="/v1/checkout"),
    services={},
    endpoints=(
        endpoint("summary", "POST", "/summary"),
        endpoint("dashboard", "GET", "/dashboard/{user_id}"),
        endpoint("me", "GET", "/dashboard/me"),
    ),
)


def test_literal_path_resolves() -> None:
    match = Router(PLAN).resolve("POST", "/v1/checkout/summary")
    assert (match.endpoint.name, match.path_params) == ("summary", {})


def test_path_params_are_decoded_and_literal_routes_win() -> None:
    router = Router(PLAN)
    assert router.resolve("GET", "/v1/checkout/dashboard/a%20b").path_params == {"user_id": "a b"}
    assert router.resolve("GET", "/v1/checkout/dashboard/me").endpoint.name == "me"
    assert router.resolve("HEAD", "/v1/checkout/dashboard/42").endpoint.name == "dashboard"


def test_unknown_path_and_wrong_method() -> None:
    router = Router(PLAN)
    with pytest.raises(NoRoute) as unknown:
        router.resolve("GET", "/v1/checkout/nope")
    assert unknown.value.allowed == ()
    with pytest.raises(NoRoute) as wrong_method:
        router.resolve("GET", "/v1/checkout/summary")
    assert wrong_method.value.allowed == ("POST",)
    with pytest.raises(NoRoute):  # a parameter never spans segments
        router.resolve("GET", "/v1/checkout/dashboard/a/b")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/checkout/dashboard/..",
        "/v1/checkout/dashboard/.",
        "/v1/checkout/dashboard/%2e%2E",
        "/v1/checkout/dashboard/%2E",
        "/v1/checkout/./summary",
        "/v1/checkout/dashboard/../summary",
        "/v1/./checkout/dashboard/42",
    ],
)
def test_a_path_with_a_dot_segment_matches_no_endpoint(path: str) -> None:
    router = Router(PLAN)
    for method in ("GET", "POST"):
        with pytest.raises(NoRoute) as missing:
            router.resolve(method, path)
        assert missing.value.allowed == ()  # a 404, not a 405 that would confirm the route


def test_dots_inside_a_segment_are_an_ordinary_value() -> None:
    router = Router(PLAN)
    for value in ("...", "a.b", ".x", "%2e%2e%2e"):
        assert router.resolve("GET", f"/v1/checkout/dashboard/{value}").endpoint.name == "dashboard"
