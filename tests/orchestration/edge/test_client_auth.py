import json
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from threading import Thread

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from orchestration.edge.client_auth import ApiKeyAuth, JwtAuth, NoAuth, build_authenticator, hash_api_key
from orchestration.errors import Unauthenticated
from orchestration.plan import ClientAuth, JwtSettings

SECRET = "s3cret-for-tests-only-32-bytes-long!"
ENV = {"GW_SECRET": SECRET}


def hs_settings(**overrides: object) -> JwtSettings:
    base: dict[str, object] = {"algorithms": ("HS256",), "secret_env": "GW_SECRET"}
    base.update(overrides)
    return JwtSettings(**base)  # type: ignore[arg-type]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def token(claims: dict[str, object], key: object = SECRET, alg: str = "HS256", **headers: str) -> str:
    return jwt.encode({"exp": int(time.time()) + 3600, **claims}, key, algorithm=alg, headers=headers or None)  # type: ignore[arg-type]


def test_valid_hs256_token_gives_user_id_and_claims() -> None:
    identity = JwtAuth(hs_settings(), environ=ENV).authenticate(bearer(token({"sub": "42", "tier": "gold"})))
    assert identity.user_id == "42"
    assert identity.claims["tier"] == "gold"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing bearer token"),
        ({"authorization": "Basic abc"}, "Missing bearer token"),
        (bearer("not-a-jwt"), "Invalid token"),
        (bearer(token({"sub": "42"}, key="another-secret-of-sufficient-length")), "Invalid token"),
        (bearer(jwt.encode({"sub": "42"}, SECRET, algorithm="HS256")), "Invalid token"),  # no exp
        (bearer(token({"sub": "42", "exp": int(time.time()) - 5})), "Token expired"),
        # A day ahead, not minutes: these tokens are made at collection, and a serial run of the
        # whole suite reaches this test ~10 minutes later.
        (bearer(token({"sub": "42", "nbf": int(time.time()) + 86400})), "Token not yet valid"),
        (bearer(token({"name": "no sub"})), "Token has no 'sub' claim"),
    ],
)
def test_bad_tokens_are_unauthenticated(headers: dict[str, str], message: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        JwtAuth(hs_settings(), environ=ENV).authenticate(headers)
    assert caught.value.message == message
    assert caught.value.status == 401


def test_issuer_and_audience_are_checked_when_set() -> None:
    auth = JwtAuth(hs_settings(issuer="https://auth.example.com", audience="checkout"), environ=ENV)
    good = token({"sub": "1", "iss": "https://auth.example.com", "aud": "checkout"})
    assert auth.authenticate(bearer(good)).user_id == "1"
    for claims in ({"iss": "https://evil.example.com", "aud": "checkout"}, {"iss": "https://auth.example.com"}):
        with pytest.raises(Unauthenticated):
            auth.authenticate(bearer(token({"sub": "1", **claims})))


def test_unset_secret_env_rejects_every_token() -> None:
    with pytest.raises(Unauthenticated):
        JwtAuth(hs_settings(), environ={}).authenticate(bearer(token({"sub": "1"})))


def test_alg_none_is_rejected() -> None:
    unsigned = jwt.encode({"sub": "1", "exp": int(time.time()) + 60}, None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(Unauthenticated):
        JwtAuth(hs_settings(), environ=ENV).authenticate(bearer(unsigned))


def test_es256_from_public_key_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    key_file = tmp_path / "pub.pem"
    key_file.write_bytes(pem)
    auth = JwtAuth(JwtSettings(algorithms=("ES256",), public_key_file=str(key_file)))
    assert auth.authenticate(bearer(token({"sub": "7"}, key=private, alg="ES256"))).user_id == "7"
    with pytest.raises(Unauthenticated):  # an HS256 token must not pass as ES256
        auth.authenticate(bearer(token({"sub": "7"})))


class _JwksServer:
    """A real JWKS endpoint on loopback that counts its hits."""

    def __init__(self) -> None:
        self.keys: list[dict[str, object]] = []
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def add(self, private: rsa.RSAPrivateKey, kid: str) -> None:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
        self.keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})


def test_rs256_from_jwks_caches_keys_and_refetches_on_unknown_kid() -> None:
    server = _JwksServer()
    first, second = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    server.add(first, "k1")
    auth = JwtAuth(JwtSettings(algorithms=("RS256",), jwks_url=server.url), jwks_refresh_cooldown_s=0)
    try:
        assert auth.authenticate(bearer(token({"sub": "a"}, key=first, alg="RS256", kid="k1"))).user_id == "a"
        assert auth.authenticate(bearer(token({"sub": "b"}, key=first, alg="RS256", kid="k1"))).user_id == "b"
        assert server.hits == 1  # cached
        server.add(second, "k2")  # key rotation
        assert auth.authenticate(bearer(token({"sub": "c"}, key=second, alg="RS256", kid="k2"))).user_id == "c"
        assert server.hits == 2
        with pytest.raises(Unauthenticated):
            auth.authenticate(bearer(token({"sub": "d"}, key=second, alg="RS256", kid="unknown")))
    finally:
        server.server.shutdown()


def test_api_key_auth_matches_by_hash_only() -> None:
    auth = ApiKeyAuth({hash_api_key("gw_live_abc"): "mobile-app"}, header="X-API-Key")
    assert auth.authenticate({"x-api-key": "gw_live_abc"}).user_id == "mobile-app"
    for headers in ({}, {"x-api-key": "gw_live_abd"}):
        with pytest.raises(Unauthenticated) as caught:
            auth.authenticate(headers)
        assert caught.value.response_headers()["WWW-Authenticate"] == 'ApiKey realm="gateway", header="x-api-key"'


def test_build_authenticator_picks_the_layer_kind() -> None:
    assert isinstance(build_authenticator(ClientAuth(type="none"), api_keys={}), NoAuth)
    assert isinstance(build_authenticator(ClientAuth(type="api_key"), api_keys={}), ApiKeyAuth)
    jwt_auth = build_authenticator(ClientAuth(type="jwt", jwt=hs_settings()), api_keys={}, environ=ENV)
    assert jwt_auth.authenticate(bearer(token({"sub": "9"}))).user_id == "9"


def test_a_token_whose_algorithm_does_not_fit_the_key_is_401(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``algorithms: [RS256, ES256]`` with an RSA key: a forged ES256 header is refused, not a crash."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    key_file = tmp_path / "rsa.pem"
    key_file.write_bytes(pem)
    auth = JwtAuth(JwtSettings(algorithms=("RS256", "ES256"), public_key_file=str(key_file)))
    assert auth.authenticate(bearer(token({"sub": "7"}, key=rsa_key, alg="RS256"))).user_id == "7"
    forged = [
        token({"sub": "7"}, key=ec.generate_private_key(ec.SECP256R1()), alg="ES256"),
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiI3In0.AAAA",
        "eyJhbGciOiJSUzI1NiIsImtpZCI6WzFdfQ.e30.AA",  # kid is a list
    ]
    for forgery in forged:
        with pytest.raises(Unauthenticated) as caught:
            auth.authenticate(bearer(forgery))
        assert (caught.value.status, caught.value.message) == (401, "Invalid token")


def test_claims_holding_an_unpaired_surrogate_are_401() -> None:
    """A signed token whose sub is ``"\\ud800"``: no rate-limit key, header or URL could carry it."""
    for payload in (b'{"sub": "\\ud800", "exp": 4000000000}', b'{"sub": "1", "n": {"\\udfff": 1}, "exp": 4000000000}'):
        signed = jwt.api_jws.encode(payload, SECRET, algorithm="HS256")
        with pytest.raises(Unauthenticated) as caught:
            JwtAuth(hs_settings(), environ=ENV).authenticate(bearer(signed))
        assert caught.value.message == "Invalid token"
    paired = jwt.api_jws.encode(b'{"sub": "\\ud83d\\ude00", "exp": 4000000000}', SECRET, algorithm="HS256")
    assert JwtAuth(hs_settings(), environ=ENV).authenticate(bearer(paired)).user_id == "\U0001f600"
