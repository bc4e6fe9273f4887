"""config_check: one test per kind of bad file, asserting the exact location text."""

from __future__ import annotations

from typing import Any

from registry.config.validation import config_check


def problems(document: Any, **options: Any) -> list[str]:
    return [str(problem) for problem in config_check(document, **options)]


def test_good_document_has_no_problems(document):
    assert problems(document) == []


def test_missing_required_keys(document):
    del document["layer"]["name"]
    del document["endpoints"][0]["calls"][1]["path"]
    assert problems(document) == [
        "layer.name: required key missing",
        "endpoints[0].calls[1].path: required key missing",
    ]


def test_wrong_types(document):
    document["services"]["cart"]["timeout_ms"] = "fast"
    document["endpoints"][0]["calls"][0]["required"] = "yes"
    document["endpoints"][1]["calls"][0]["stage"] = True
    assert problems(document) == [
        "services.cart.timeout_ms: expected an integer, got 'fast'",
        "endpoints[0].calls[0].required: expected true or false, got 'yes'",
        "endpoints[1].calls[0].stage: expected an integer, got true",
    ]


def test_unknown_keys(document):
    document["layer"]["colour"] = "blue"
    document["services"]["cart"]["retry"]["retries"] = 3
    document["endpoints"][0]["calls"][2]["colour"] = {}
    found = problems(document)
    assert (
        found[0] == "layer.colour: unknown key (expected one of: name, owner, base_path, transport, auth, rate_limits)"
    )
    assert found[1] == (
        "services.cart.retry.retries: unknown key (expected one of: max_retries, backoff, base_ms, jitter, retry_on, "
        "budget_percent, budget_min_per_s)"
    )
    assert found[2].startswith("endpoints[0].calls[2].colour: unknown key (expected one of: id, service, stage,")
    assert len(found) == 3


def test_unknown_service(document):
    document["endpoints"][0]["calls"][4]["service"] = "taxes"
    assert problems(document) == ["endpoints[0].calls[4].service: unknown service 'taxes'"]


def test_unknown_call_in_a_path(document):
    document["endpoints"][0]["calls"][2]["path"] = "/quote/{{ crt.id }}"
    assert problems(document) == ["endpoints[0].calls[2].path: unknown call 'crt'"]


def test_unknown_call_in_the_response_points_at_the_leaf(document):
    document["endpoints"][0]["response"]["total"] = "{{ sum([pricing.subtotal, taxes.amount]) }}"
    assert problems(document) == ["endpoints[0].response.total: unknown call 'taxes'"]


def test_reference_to_the_same_stage(document):
    document["endpoints"][0]["calls"][2]["body"] = {"stock": "{{ inventory.available }}"}
    assert problems(document) == [
        "endpoints[0].calls[2].body.stock: call 'inventory' runs in the same stage (2); "
        "a call may only use calls of earlier stages"
    ]


def test_reference_to_a_later_stage(document):
    document["endpoints"][0]["calls"][0]["headers"] = {"X-Tax": "{{ tax.amount }}"}
    assert problems(document) == [
        "endpoints[0].calls[0].headers.X-Tax: call 'tax' runs in a later stage (3); "
        "a call may only use calls of earlier stages"
    ]


def test_event_only_in_invalidation_tags(document):
    document["endpoints"][1]["response"]["who"] = "{{ event.userId }}"
    document["endpoints"][1]["cache"]["invalidate_on"][0]["tags"] = ["user:{{ user.sub }}"]
    assert problems(document) == [
        "endpoints[1].response.who: 'event' is only available in cache.invalidate_on tags",
        "endpoints[1].cache.invalidate_on[0].tags[0]: unknown name 'user'; invalidate_on tags may only use 'event'",
    ]


def test_template_that_does_not_parse(document):
    document["endpoints"][0]["response"]["cart"]["itemCount"] = "{{ length(cart.items }}"
    document["endpoints"][0]["calls"][0]["path"] = "/carts/{{ request.body.cartId"
    found = problems(document)
    assert found[0] == "endpoints[0].calls[0].path: unbalanced '{{' or '}}' in '/carts/{{ request.body.cartId'"
    assert found[1].startswith("endpoints[0].response.cart.itemCount: invalid expression 'length(cart.items':")


def test_duplicate_method_and_path(document):
    document["endpoints"].append(dict(document["endpoints"][1], name="dashboard-2", path="/dashboard/{id}"))
    assert problems(document) == [
        "endpoints[2].path: duplicate method and path GET /dashboard/{id} (also endpoints[1])"
    ]


def test_duplicate_endpoint_name(document):
    document["endpoints"][1]["name"] = "checkout-summary"
    assert problems(document) == ["endpoints[1].name: duplicate endpoint name 'checkout-summary' (also endpoints[0])"]


def test_call_timeout_above_the_endpoint_total(document):
    document["endpoints"][0]["calls"][3]["timeout_ms"] = 2500
    assert problems(document) == [
        "endpoints[0].calls[3].timeout_ms: 2500 ms is above the endpoint's total timeout_ms (2000)"
    ]


def test_invalid_base_urls(document):
    document["services"]["cart"]["base_url"] = "ftp://cart.internal"
    document["services"]["tax"]["base_url"] = "http://"
    document["services"]["pricing"]["base_url"] = "pricing:8080"
    assert problems(document) == [
        "services.cart.base_url: invalid URL 'ftp://cart.internal': must be http:// or https:// with a host",
        "services.pricing.base_url: invalid URL 'pricing:8080': must be http:// or https:// with a host",
        "services.tax.base_url: invalid URL 'http://': must be http:// or https:// with a host",
    ]


def test_unknown_enum_values(document):
    document["endpoints"][0]["method"] = "FETCH"
    document["services"]["cart"]["auth"] = {"type": "oauth"}
    document["services"]["cart"]["retry"]["backoff"] = "linear"
    document["services"]["cart"]["retry"]["retry_on"] = ["5xx", "4xx"]
    document["layer"]["rate_limits"][0]["scope"] = "tenant"
    document["endpoints"][1]["cache"]["scope"] = "private"
    document["layer"]["auth"]["type"] = "oauth"
    assert problems(document) == [
        "layer.rate_limits[0].scope: unknown value 'tenant' (expected one of: user, ip, endpoint, global)",
        # a string or a list of types: checked after the structure (client_auth_rules)
        "layer.auth.type: unknown value 'oauth' (expected one of: jwt, api_key, none, oauth2_introspection, session)",
        "services.cart.auth.type: unknown value 'oauth' (expected one of: none, bearer_forward, bearer, api_key, mtls)",
        "services.cart.retry.backoff: unknown value 'linear' (expected one of: exponential, fixed, none)",
        "services.cart.retry.retry_on[1]: unknown value '4xx' (expected one of: 5xx, timeout, connect_error, 429)",
        "endpoints[0].method: unknown value 'FETCH' (expected one of: GET, POST, PUT, PATCH, DELETE)",
        "endpoints[1].cache.scope: unknown value 'private' (expected one of: user, shared)",
    ]


def test_secrets_written_inline(document):
    document["layer"]["auth"]["jwt"]["secret"] = "s3cr3t"
    document["services"]["inventory"]["auth"] = {"type": "bearer", "token": "abc123"}
    document["services"]["pricing"]["auth"]["api_key_value"] = "k-123"
    document["services"]["tax"]["auth"] = {"type": "bearer", "token_env": "eyJhbGciOi.abc"}
    document["services"]["shipping"]["base_url"] = "http://admin:hunter2@127.0.0.1:9105"
    document["endpoints"][0]["calls"][0]["headers"]["Authorization"] = "Bearer abc123"
    inline = "secret written inline; put it in an environment variable and name it with 'token_env' or 'key_env'"
    assert problems(document) == [
        "layer.auth.jwt.secret: secret written inline; "
        "put the secret in an environment variable and name it with 'secret_env'",
        f"services.inventory.auth.token: {inline}",
        "services.inventory.auth.token_env: required for auth type 'bearer'",
        f"services.pricing.auth.api_key_value: {inline}",
        "services.shipping.base_url: secret written inline: credentials in the URL; use the service's auth",
        "services.tax.auth.token_env: must name an environment variable (like GATEWAY_JWT_SECRET), "
        "not hold a value; a secret written inline is never accepted",
        "endpoints[0].calls[0].headers.Authorization: secret written inline; "
        "use the service's auth (token_env, key_env) instead",
    ]


def test_call_headers_the_gateway_never_sends_are_named_where_they_stand(document):
    # build_request drops these at run time; the check says so instead of accepting them silently
    document["endpoints"][0]["calls"][0]["headers"] = {
        "Host": "{{ request.headers.host }}",
        "authorization": "{{ request.headers.authorization }}",
        "x-request-id": "mine",
        "Content-Length": "5",
        "Connection": "close",
        "X-Tenant": "{{ user.sub }}",  # any other header is sent
    }
    never = "never sent from a call's headers"
    assert problems(document) == [
        f"endpoints[0].calls[0].headers.Host: {never}: the gateway sends the host of the service's base_url",
        f"endpoints[0].calls[0].headers.authorization: {never}: credentials come from the service's auth "
        "(bearer_forward passes the client's token on)",
        f"endpoints[0].calls[0].headers.x-request-id: {never}: the gateway sends the request's own X-Request-ID "
        "to every call",
        f"endpoints[0].calls[0].headers.Content-Length: {never}: the gateway frames the body itself",
        f"endpoints[0].calls[0].headers.Connection: {never}: a hop-by-hop header (the gateway manages its own "
        "connections)",
    ]


def test_a_literal_authorization_header_is_one_problem_not_two(document):
    document["endpoints"][0]["calls"][0]["headers"] = {"Authorization": "Bearer abc123"}
    assert problems(document) == [
        "endpoints[0].calls[0].headers.Authorization: secret written inline; "
        "use the service's auth (token_env, key_env) instead",
    ]


def test_reserved_and_duplicate_call_ids(document):
    calls = document["endpoints"][0]["calls"]
    calls[3]["id"] = "user"
    calls[4]["id"] = "cart"
    found = problems(document)
    reserved = "call ids must not be request, user, event, item or index"
    assert f"endpoints[0].calls[3].id: 'user' is reserved; {reserved}" in found
    assert "endpoints[0].calls[4].id: duplicate call id 'cart' (also calls[0])" in found


def test_paths_must_be_absolute_and_params_identifiers(document):
    document["layer"]["base_path"] = "v1/checkout"
    document["endpoints"][0]["path"] = "summary"
    document["endpoints"][1]["path"] = "/dashboard/{user-id}"
    assert problems(document) == [
        "layer.base_path: must start with '/', got 'v1/checkout'",
        "endpoints[0].path: must start with '/', got 'summary'",
        "endpoints[1].path: path parameter 'user-id' must be an identifier",
    ]


def test_version_must_be_1(document):
    document["version"] = 2
    assert problems(document) == ["version: unsupported version 2; must be 1"]


def test_every_problem_is_reported_not_only_the_first(document):
    document["version"] = 3
    document["services"]["cart"]["base_url"] = "nope"
    document["endpoints"][0]["calls"][2]["path"] = "/quote/{{ crt.id }}"
    assert len(problems(document)) == 3


def test_the_top_level_must_be_a_mapping():
    assert problems(["a"]) == ['expected a mapping, got ["a"]']


SHARED = "endpoints[1].cache.scope: a shared entry would serve one user's answer to another: "


def shared_dashboard(document: Any) -> dict[str, Any]:
    """The dashboard, cached shared, calling only the payment service (mTLS: the gateway's own credentials)."""
    dashboard: dict[str, Any] = document["endpoints"][1]
    dashboard["cache"] = {"ttl_s": 60, "scope": "shared"}
    dashboard["calls"] = dashboard["calls"][1:]
    dashboard["response"] = {"paymentMethods": "{{ payment_methods }}"}
    assert problems(document) == []
    return dashboard


def test_shared_cache_of_an_endpoint_that_reads_user_is_rejected(document):
    dashboard = shared_dashboard(document)
    dashboard["response"] = {"me": "{{ user.sub }}"}
    assert problems(document) == [SHARED + "response.me reads 'user'; use scope: user"]
    dashboard["cache"]["scope"] = "user"
    assert problems(document) == []


def test_shared_cache_of_an_endpoint_that_forwards_the_clients_token_is_rejected(document):
    dashboard = document["endpoints"][1]  # calls[0] calls 'cart', whose auth is bearer_forward
    dashboard["cache"]["scope"] = "shared"
    dashboard["cache"]["tags"] = ["dashboard"]
    assert problems(document) == [
        SHARED + "calls[0] sends the client's credentials to service 'cart' (auth bearer_forward); use scope: user"
    ]


def test_every_template_that_reads_the_caller_is_named(document):
    dashboard = shared_dashboard(document)
    payment = dashboard["calls"][0]
    payment["path"] = "/users/{{ user.sub }}/methods"
    payment["query"] = {"lang": '{{ request.headers."accept-language" }}', "page": "{{ request.query.page }}"}
    payment["headers"] = {"X-Everything": "{{ request }}"}
    payment["body"] = {"who": ["{{ [user.sub, request.headers.host] }}"]}
    dashboard["response"]["whole"] = "{{ @ }}"
    dashboard["cache"]["tags"] = ["user:{{ user.sub }}", "catalog"]
    assert problems(document) == [
        SHARED + "calls[0].path reads 'user'; use scope: user",
        SHARED + "calls[0].query.lang reads 'request.headers'; use scope: user",
        SHARED + "calls[0].headers.X-Everything reads 'request.headers'; use scope: user",
        SHARED + "calls[0].body.who[0] reads 'user' and 'request.headers'; use scope: user",
        SHARED + "response.whole reads 'user' and 'request.headers'; use scope: user",
        SHARED + "cache.tags[0] reads 'user'; use scope: user",
    ]


def test_a_shared_endpoint_may_read_the_path_query_and_body(document):
    dashboard = shared_dashboard(document)
    dashboard["calls"][0]["path"] = "/users/{{ request.path.user_id }}/methods"
    dashboard["calls"][0]["query"] = {"page": "{{ request.query.page }}", "q": "{{ request.body.q }}"}
    dashboard["response"]["headersText"] = "request.headers"  # text, not a template
    assert problems(document) == []


USER_WITHOUT_AUTH = (
    "endpoints[1].cache.scope: scope 'user' keys entries by the user id, but layer.auth.type is 'none': "
    "every client would get the same entry; use scope: shared, or turn on client auth"
)


def test_user_scope_without_client_auth_is_rejected(document):
    document["layer"]["auth"] = {"type": "none"}
    assert problems(document) == [USER_WITHOUT_AUTH]
    del document["layer"]["auth"]  # the default is none too
    assert problems(document) == [USER_WITHOUT_AUTH]
    document["endpoints"][1]["cache"]["scope"] = "shared"
    document["endpoints"][1]["cache"]["tags"] = []
    document["services"]["cart"]["auth"] = {"type": "none"}
    assert problems(document) == []


def test_an_endpoint_that_is_not_cached_may_have_any_scope(document):
    dashboard = document["endpoints"][1]
    dashboard["cache"] = {"ttl_s": 0, "scope": "shared"}
    dashboard["response"]["me"] = "{{ user.sub }}"
    assert problems(document) == []
    document["layer"]["auth"] = {"type": "none"}
    dashboard["cache"] = {"ttl_s": 0, "scope": "user"}
    assert problems(document) == []
