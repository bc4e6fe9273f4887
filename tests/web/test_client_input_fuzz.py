"""No client input produces a 500 (CONTRACT section 2): Hypothesis drives the
production WSGI application (``gateway_project.wsgi.application``, the object
gunicorn serves, middleware included) with random methods, paths, headers,
tokens, query strings and bodies, under each kind of client auth. Every answer
carries X-Request-ID (the client's when it sent a sane one); every non-2xx is
the contract's envelope with that request id. Downstreams are
``httpx.MockTransport`` (tests/web/real_engine.py), so valid requests run the
whole plan in microseconds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.web.real_engine import AUTH_VARIANTS, Answer, Credentials, b64url, served_over_wsgi, serving

EXAMPLES = 300  # per auth variant; seconds, not minutes, on a loaded CI machine
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def wsgi(text: str) -> str:
    """A WSGI environ string (latin-1 code points) carrying ``text`` as UTF-8 bytes, as a server passes it."""
    return text.encode("utf-8").decode("latin-1")


# --- methods and paths ---------------------------------------------------------

methods = st.one_of(
    st.sampled_from(["GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "get"]),
    st.from_regex(r"\A[A-Za-z!#$%&'*+.^_`|~-]{1,12}\Z"),
)
segments = st.one_of(
    st.sampled_from(
        [
            "profile",
            "summary",
            "orders",
            "catalog",
            "u1",
            ".",
            "..",
            "%2e",
            "%2E%2E",
            ".%2e",
            "%2f",
            "%00",
            "%ff",
            "%",
            "%zz",
            "",
            "é",
            "%C3%A9",
            "a b",
            "~",
            "{user_id}",
            "x" * 300,
        ]
    ),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="?#"), max_size=12),
)
prefixes = st.sampled_from(["/v1/", "/v1/", "/v1/", "/v1//", "/v2/", "/V1/", "/v1/%2e%2e/v1/", "/v1/./", "/x/"])
paths = st.builds(lambda prefix, parts: prefix + "/".join(parts), prefixes, st.lists(segments, max_size=4))

# --- query strings ---------------------------------------------------------------

query_keys = st.one_of(st.sampled_from(["name", "include", "tags", "q", "name[]", ""]), st.text(max_size=8))
query_values = st.one_of(
    st.sampled_from(["José", "a\r\nX-Injected: 1", "\x00", "%0d%0a", "日本", "..", "", "x" * 5000]),
    st.text(max_size=20),
)
few_pairs = st.lists(st.tuples(query_keys, query_values), max_size=8).map(
    lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)
)
template_pairs = st.dictionaries(st.sampled_from(["name", "include", "tags", "q"]), query_values, min_size=1).map(
    lambda pairs: "&".join(f"{k}={v}" for k, v in pairs.items())
)
many_pairs = st.sampled_from([999, 1000, 1001, 3000]).map(lambda n: "&".join(f"k{i}={i}" for i in range(n)))
query_strings = st.one_of(template_pairs, few_pairs, many_pairs, st.text(max_size=40)).map(wsgi)

# --- tokens ----------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
algorithms = st.sampled_from(["HS256", "RS256", "ES256", "PS256", "EdDSA", "none", "None", "", "XYZ"])
headers_objects = st.one_of(
    st.fixed_dictionaries(
        {"alg": algorithms},
        optional={"kid": st.one_of(st.sampled_from(["rsa", "ec", "broken"]), json_values), "typ": json_values},
    ),
    json_values,
)
claims_objects = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "sub": json_values,
            "exp": st.one_of(st.integers(), json_values),
            "nbf": json_values,
            "iat": json_values,
            "aud": json_values,
            "iss": json_values,
        },
    ),
    json_values,
)

signed_claims = st.one_of(
    st.fixed_dictionaries(
        {"sub": st.one_of(json_values, st.sampled_from(["\ud800", "é", "a/b", "", "x" * 2000]))},
        optional={
            "exp": st.one_of(st.just(4_000_000_000), st.integers(), st.floats(allow_nan=False), json_values),
            "nbf": st.one_of(st.integers(), json_values),
            "iat": st.one_of(st.integers(), json_values),
        },
    ),
    json_values,
)


def forged(header: Any, claims: Any, signature: bytes) -> str:
    return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()), b64url(signature)])


forged_tokens = st.builds(forged, headers_objects, claims_objects, st.binary(max_size=300))
authorizations = st.one_of(
    st.builds(lambda token: "Bearer " + token, forged_tokens),
    st.builds(lambda token: "Bearer " + token, st.text(max_size=60)),
    st.sampled_from(["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer a.b.c", "Bearer ..", "Bearer a.b.c.d"]),
    st.text(max_size=60),
).map(wsgi)

session_cookies = st.one_of(
    st.builds(lambda value: "sessionid=" + value, st.text(max_size=80)),
    st.builds(lambda value: "csrftoken=x; sessionid=" + value, st.from_regex(r"\A[a-z0-9]{32}\Z")),
    st.sampled_from(["sessionid=", "sessionid", "=;=;", "sessionid=\x00", 'sessionid="a b"']),
).map(wsgi)

# --- bodies ----------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b'{"cartId": ' + b"[" * depth + b"]" * depth + b"}"


bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=200),
    st.builds(lambda value: json.dumps(value).encode(), json_values),
    st.builds(
        lambda cart, note: json.dumps({"cartId": cart, "note": note}).encode(),
        st.one_of(st.sampled_from(["c-1", "", ".", "..", "../admin", "a/b", "%2e", None]), json_values),
        json_values,
    ),
    st.sampled_from(
        [
            b'{"cartId": NaN}',
            b'{"cartId": "c-1", "note": Infinity}',
            b"-Infinity",
            b"1" * 5000,
            b'{"cartId": "\\ud800"}',
            b"\xef\xbb\xbf{}",
            b'{"a": 1, "a": 2}',
        ]
    ),
    st.sampled_from([10, 63, 64, 65, 1000, 50_000]).map(nested),
)
content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "multipart/form-data",
            "application/x-www-form-urlencoded",
            "application/json; charset=latin-1",
            "",
        ]
    ),
    st.text(max_size=30).map(wsgi),
)

# --- other headers ---------------------------------------------------------------

request_ids = st.one_of(st.from_regex(SANE_REQUEST_ID, fullmatch=True), st.text(max_size=140)).map(wsgi)
header_values = st.one_of(st.sampled_from(["José", "日本語", "a\r\nb", "\x00"]), st.text(max_size=40)).map(wsgi)
extra_headers = st.dictionaries(
    st.sampled_from(
        [
            "HTTP_ACCEPT_LANGUAGE",
            "HTTP_TRACEPARENT",
            "HTTP_TRACESTATE",
            "HTTP_BAGGAGE",
            "HTTP_X_FORWARDED_FOR",
            "HTTP_X_API_KEY",
            "HTTP_COOKIE",
            "HTTP_ACCEPT",
            "HTTP_TRANSFER_ENCODING",
            "HTTP_IF_NONE_MATCH",
        ]
    ),
    header_values,
    max_size=4,
)


# Half the requests go to an endpoint that exists, with its method: client input
# that passes routing and auth reaches templates, the plan and the downstreams.
routed = st.one_of(
    st.tuples(st.sampled_from(["GET", "HEAD"]), st.builds(lambda seg: "/v1/profile/" + seg, segments)),
    st.tuples(st.just("POST"), st.just("/v1/summary")),
    st.tuples(st.sampled_from(["GET", "HEAD"]), st.sampled_from(["/v1/orders", "/v1/catalog"])),
)
targets = st.one_of(routed, st.tuples(methods, paths))


hosts = st.one_of(
    st.sampled_from(["evil.example", "localhost:80", "localhost:99999", "", "[::1]", "[::1", "a b", "é", "localhost."]),
    st.text(max_size=20),
).map(wsgi)


@st.composite
def client_requests(draw: st.DrawFn, credentials: Credentials) -> dict[str, Any]:
    environ: dict[str, str] = dict(draw(extra_headers))
    choice = draw(st.sampled_from(["valid", "valid", "signed", "forged", "none"]))
    if choice == "valid":
        environ.update(credentials.valid(draw(st.sampled_from(["user-1", "user-2"]))))
    elif choice == "signed":  # the right key, any claims: sub of any type, odd exp/nbf/iat, surrogates
        environ.update(credentials.signed(draw(signed_claims)))
    elif choice == "forged":
        environ["HTTP_AUTHORIZATION"] = draw(authorizations)
    if draw(st.integers(0, 3)) == 0:  # session cookies of any shape (session auth reads them)
        environ["HTTP_COOKIE"] = draw(session_cookies)
    if draw(st.booleans()):
        environ["HTTP_X_REQUEST_ID"] = draw(request_ids)
    if draw(st.integers(0, 9)) == 0:
        environ["HTTP_HOST"] = draw(hosts)
    environ["QUERY_STRING"] = draw(query_strings)
    method, path = draw(targets)
    return {"method": method, "path": path, "data": draw(bodies), "content_type": draw(content_types), **environ}


def check_answer(answer: Answer, sent: dict[str, Any]) -> None:
    status = answer.status
    assert status != 500 and 200 <= status < 600, (status, answer.body[:300])
    request_id = answer.headers["X-Request-ID"]
    offered = sent.get("HTTP_X_REQUEST_ID", "")
    if SANE_REQUEST_ID.match(offered):
        assert request_id == offered
    if 200 <= status < 300:
        return
    body = json.loads(answer.body)
    assert set(body) == {"error", "data"} and body["data"] == {}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"] and isinstance(error["message"], str), error
    assert error["requestId"] == request_id, (error, request_id)


@pytest.mark.parametrize(
    "variant",  # session auth reads Django's sessions: cookies of every shape meet the real session store
    [pytest.param(v, marks=pytest.mark.django_db) if v == "session-list" else v for v in AUTH_VARIANTS],
)
def test_no_client_input_gets_a_500_and_every_error_is_the_envelope(
    variant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(variant, tmp_path, monkeypatch.setenv) as served:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(sent=client_requests(served.credentials))
        def answers_without_a_500(sent: dict[str, Any]) -> None:
            check_answer(served_over_wsgi(sent), sent)

        answers_without_a_500()
