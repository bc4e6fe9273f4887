"""A JWKS key set over a real HTTP server on loopback: every way the URL can fail
is a 401 (never a 500), the last good set keeps serving, and failed fetches cool
down instead of hitting the URL on every request."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from orchestration.clock import FakeClock
from orchestration.edge.client_auth import JwtAuth
from orchestration.edge.jwks import JwksKeys, KeyNotFound
from orchestration.errors import Unauthenticated
from orchestration.plan import JwtSettings

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
HTML = (200, "text/html", b"<html><body>Sign in</body></html>")


def jwk(private: Any, kid: str, **extra: object) -> dict[str, object]:
    algorithm = jwt.algorithms.RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
    return {**json.loads(algorithm.to_jwk(private.public_key())), "kid": kid, **extra}


def key_set(*keys: dict[str, object]) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps({"keys": list(keys)}).encode()


def token(private: Any, alg: str, kid: str, sub: str = "u1") -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 86400}, private, algorithm=alg, headers={"kid": kid})


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


class JwksServer:
    """Answers ``answer`` (status, content type, body) to every GET and counts the hits."""

    def __init__(self, answer: tuple[int, str, bytes]) -> None:
        self.answer = answer
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                status, content_type, body = outer.answer
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served() -> Iterator[JwksServer]:
    server = JwksServer(key_set(jwk(RSA_KEY, "r1")))
    yield server
    server.stop()


def keys_over(server: JwksServer, clock: FakeClock) -> JwksKeys:
    return JwksKeys(server.url, refresh_cooldown_s=30, failure_cooldown_s=5, timeout_s=2, clock=clock.monotonic)


def mixed_auth(url: str) -> JwtAuth:
    return JwtAuth(JwtSettings(algorithms=("RS256", "ES256"), jwks_url=url))


def test_a_key_set_with_mixed_and_broken_keys_serves_the_usable_ones(served: JwksServer) -> None:
    served.answer = key_set(
        jwk(RSA_KEY, "r1", use="sig", alg="RS256"),
        jwk(EC_KEY, "e1"),
        {"kty": "RSA", "kid": "no-exponent", "n": "sXch"},  # PyJWT raises KeyError on this one
        {"kty": "OKP", "kid": "odd-curve", "crv": "X448", "x": "AA"},
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},
        {"kty": ["RSA"], "kid": "weird"},
        "not a key",
        jwk(RSA_KEY, "enc", use="enc"),
    )
    auth = mixed_auth(served.url)
    assert auth.authenticate(bearer(token(RSA_KEY, "RS256", "r1", "rsa-user"))).user_id == "rsa-user"
    assert auth.authenticate(bearer(token(EC_KEY, "ES256", "e1", "ec-user"))).user_id == "ec-user"
    assert served.hits == 1


@pytest.mark.parametrize(
    "forged",
    [
        token(EC_KEY, "ES256", "r1"),  # an ES256 header naming the RSA key
        token(RSA_KEY, "RS256", "e1"),  # an RS256 header naming the EC key
        token(RSA_KEY, "RS256", "no-exponent"),
        token(RSA_KEY, "RS256", "shared"),
        token(RSA_KEY, "RS256", "enc"),
        jwt.encode({"sub": "x", "exp": int(time.time()) + 86400}, RSA_KEY, algorithm="RS256"),  # no kid
        "eyJhbGciOiJFUzI1NiIsImtpZCI6InIxIn0.e30.AAAA",  # ES256 header, kid r1, junk signature
    ],
)
def test_a_token_that_fits_no_key_is_401(served: JwksServer, forged: str) -> None:
    served.answer = key_set(
        jwk(RSA_KEY, "r1"),
        jwk(EC_KEY, "e1"),
        {"kty": "RSA", "kid": "no-exponent", "n": "sXch"},
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},
        jwk(RSA_KEY, "enc", use="enc"),
    )
    with pytest.raises(Unauthenticated) as refused:
        mixed_auth(served.url).authenticate(bearer(forged))
    assert (refused.value.status, refused.value.message) == (401, "Invalid token")


@pytest.mark.parametrize(
    "answer",
    [
        HTML,
        (200, "application/json", b"[1, 2]"),
        (200, "application/json", b'{"keys": "none"}'),
        (200, "application/json", b'{"keys": []}'),
        (200, "application/json", json.dumps({"keys": [{"kty": "oct", "kid": "r1", "k": "AAAA"}]}).encode()),
        (200, "application/json", b"\xff\xfe not utf-8"),
        (500, "text/plain", b"down"),
        (302, "text/plain", b""),
    ],
)
def test_a_url_that_gives_no_key_set_is_401(served: JwksServer, answer: tuple[int, str, bytes]) -> None:
    served.answer = answer
    with pytest.raises(Unauthenticated) as refused:
        mixed_auth(served.url).authenticate(bearer(token(RSA_KEY, "RS256", "r1")))
    assert refused.value.status == 401
    assert served.hits == 1


def test_an_unreachable_url_is_401(served: JwksServer) -> None:
    served.stop()
    with pytest.raises(Unauthenticated):
        mixed_auth(served.url).authenticate(bearer(token(RSA_KEY, "RS256", "r1")))


def test_the_last_good_set_keeps_serving_while_the_url_fails(served: JwksServer) -> None:
    clock = FakeClock()
    keys = keys_over(served, clock)
    assert keys.key_for("r1") is not None
    served.answer = HTML
    clock.advance(301)  # past the set's lifespan: due for a refetch, which fails
    assert keys.key_for("r1") is not None
    assert served.hits == 2
    served.answer = (503, "text/plain", b"")
    clock.advance(6)
    assert keys.key_for("r1") is not None
    assert served.hits == 3


def test_a_failed_fetch_is_not_retried_within_its_cooldown(served: JwksServer) -> None:
    clock = FakeClock()
    served.answer = HTML
    keys = keys_over(served, clock)
    for _ in range(5):
        with pytest.raises(KeyNotFound):
            keys.key_for("r1")
        clock.advance(0.9)
    assert served.hits == 1
    served.answer = key_set(jwk(RSA_KEY, "r1"))
    clock.advance(1)  # 5.5 s after the failure
    assert keys.key_for("r1") is not None
    assert served.hits == 2


def test_unknown_kids_refetch_at_most_once_per_cooldown(served: JwksServer) -> None:
    clock = FakeClock()
    keys = keys_over(served, clock)
    keys.key_for("r1")
    clock.advance(31)
    for kid in ("forged-1", "forged-2", "forged-3"):
        with pytest.raises(KeyNotFound):
            keys.key_for(kid)
    assert served.hits == 2
    served.answer = key_set(jwk(RSA_KEY, "r1"), jwk(EC_KEY, "rotated"))
    clock.advance(31)
    assert keys.key_for("rotated") is not None
    assert served.hits == 3


def test_a_failing_refetch_for_an_unknown_kid_keeps_the_known_keys(served: JwksServer) -> None:
    clock = FakeClock()
    keys = keys_over(served, clock)
    keys.key_for("r1")
    served.stop()
    clock.advance(31)
    with pytest.raises(KeyNotFound):
        keys.key_for("forged")
    assert keys.key_for("r1") is not None
