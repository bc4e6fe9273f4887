"""Client input that used to produce a 500 now gets the contract's 4xx envelope
(issue 11 item 4), through the production WSGI application, with the real
engine and downstreams that count their hits. The fuzz test beside this one
looks for more."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.web.real_engine import EC_KEY, RSA_KEY, Answer, Served, send, serving


@pytest.fixture
def gateway(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    with serving(getattr(request, "param", "none"), tmp_path, monkeypatch.setenv) as served:
        yield served


def assert_envelope(answer: Answer, status: int, code: str, message: str | None = None) -> None:
    assert answer.status == status, answer.body
    error = answer.json()["error"]
    assert error["code"] == code
    assert error["requestId"] == answer.headers["X-Request-ID"]
    assert answer.json()["data"] == {}
    if message is not None:
        assert error["message"] == message


def forged_bearer(private: object, alg: str, kid: str | None = None) -> dict[str, str]:
    headers = {"kid": kid} if kid else None
    token = jwt.encode({"sub": "mallory", "exp": int(time.time()) + 600}, private, algorithm=alg, headers=headers)  # type: ignore[arg-type]
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.mark.parametrize("gateway", ["jwt-rsa-es"], indirect=True)
def test_an_es256_token_against_an_rsa_key_is_401(gateway: Served) -> None:
    """``algorithms: [RS256, ES256]`` with an RSA public key file; the token says ES256."""
    for forged in (forged_bearer(EC_KEY, "ES256"), forged_bearer(ec.generate_private_key(ec.SECP256R1()), "ES256")):
        assert_envelope(send("GET", "/v1/orders", **forged), 401, "UNAUTHENTICATED", "Invalid token")
    assert send("GET", "/v1/orders", **gateway.credentials.valid()).status == 200
    assert gateway.downstreams.hits == {"orders": 1}


@pytest.mark.parametrize("gateway", ["jwt-jwks"], indirect=True)
def test_a_token_naming_a_key_of_another_type_in_the_jwks_is_401(gateway: Served) -> None:
    """The JWKS holds an RSA key, an EC key and a broken one."""
    for forged in (
        forged_bearer(EC_KEY, "ES256", kid="rsa"),
        forged_bearer(RSA_KEY, "RS256", kid="ec"),
        forged_bearer(RSA_KEY, "RS256", kid="broken"),
        forged_bearer(RSA_KEY, "RS256", kid="unknown"),
    ):
        assert_envelope(send("GET", "/v1/orders", **forged), 401, "UNAUTHENTICATED", "Invalid token")
    assert send("GET", "/v1/orders", **forged_bearer(EC_KEY, "ES256", kid="ec")).status == 200
    assert gateway.downstreams.hits == {"orders": 1}


@pytest.mark.parametrize("name", ["Jos%C3%A9", "a%0D%0AX-Injected:%201", "nul%00"])
def test_a_templated_header_the_wire_cannot_carry_is_400_before_any_call(gateway: Served, name: str) -> None:
    answer = send("GET", "/v1/profile/u1", QUERY_STRING=f"name={name}")
    message = "Call 'profile' cannot be made: header X-Name would carry a non-ASCII or control character"
    assert_envelope(answer, 400, "BAD_REQUEST", message)
    assert gateway.downstreams.hits == {}


def test_a_plain_templated_header_is_sent(gateway: Served) -> None:
    assert send("GET", "/v1/profile/u1", QUERY_STRING="name=Jose").status == 200
    assert [r.headers["X-Name"] for r in gateway.downstreams.requests] == ["Jose"]


@pytest.mark.parametrize("content_type", ["", "application/json; charset=utf-8"])
def test_more_than_1000_query_parameters_is_400(gateway: Served, content_type: str) -> None:
    many = "&".join(f"k{i}=v" for i in range(1001))
    answer = send("GET", "/v1/orders", QUERY_STRING=many, content_type=content_type)
    assert_envelope(answer, 400, "BAD_REQUEST", "Query string has more than 1000 parameters")
    assert gateway.downstreams.hits == {}
    assert send("GET", "/v1/orders", QUERY_STRING=many.rsplit("&", 1)[0], content_type=content_type).status == 200


@pytest.mark.parametrize("charset", ["rot13", "zlib", "idna", "no-such-charset"])
def test_a_content_type_charset_that_is_not_a_text_encoding_is_ignored(gateway: Served, charset: str) -> None:
    answer = send("GET", "/v1/profile/u1", QUERY_STRING="name=Jose", content_type=f"text/plain; charset={charset}")
    assert answer.status == 200
    assert answer.json()["name"] == "Jose"


@pytest.mark.parametrize("body", [b'{"cartId": NaN}', b'{"cartId": "c-1", "note": Infinity}', b"-Infinity"])
def test_non_json_constants_in_a_body_are_400(gateway: Served, body: bytes) -> None:
    answer = send("POST", "/v1/summary", data=body, content_type="application/json")
    assert_envelope(answer, 400, "BAD_REQUEST", "Request body is not valid JSON")
    assert gateway.downstreams.hits == {}


def test_a_path_with_a_newline_is_a_404_envelope(gateway: Served) -> None:
    assert_envelope(send("GET", "/v1/orders%0A"), 404, "NOT_FOUND")
    assert_envelope(send("GET", "/v1/%0A/x"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "body",
    [b'{"cartId": "\\ud800"}', b'{"cartId": "c-1", "note": "\\udfff x"}', b'{"cartId": "\xed\xa0\x80"}'],
)
def test_an_unpaired_surrogate_in_a_body_is_400(gateway: Served, body: bytes) -> None:
    answer = send("POST", "/v1/summary", data=body, content_type="application/json")
    assert answer.status == 400 and answer.json()["error"]["code"] == "BAD_REQUEST", answer.body
    assert gateway.downstreams.hits == {}


def test_a_paired_surrogate_escape_is_a_character(gateway: Served) -> None:
    answer = send("POST", "/v1/summary", data=b'{"cartId": "\\ud83d\\ude00"}', content_type="application/json")
    assert answer.status == 200
    assert gateway.downstreams.requests[0].url.raw_path == b"/carts/%F0%9F%98%80"


def test_a_host_not_allowed_is_a_400_envelope(gateway: Served) -> None:
    assert_envelope(send("GET", "/v1/orders", HTTP_HOST="evil.example"), 400, "BAD_REQUEST", "Bad request")
    assert gateway.downstreams.hits == {}
