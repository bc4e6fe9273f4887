"""A verified token is remembered briefly, never past the times it would pass again."""

import time

import jwt
import pytest

from orchestration.edge import client_auth
from orchestration.edge.client_auth import JwtAuth
from orchestration.errors import Unauthenticated
from orchestration.plan import JwtSettings

SECRET = "s3cret-for-tests-only-32-bytes-long!"
SETTINGS = JwtSettings(algorithms=("HS256",), secret_env="GW_SECRET")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def bearer(claims: dict[str, object], key: str = SECRET) -> dict[str, str]:
    return {"authorization": f"Bearer {jwt.encode(claims, key, algorithm='HS256')}"}


def test_a_remembered_token_is_not_taken_past_its_exp(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    auth = JwtAuth(SETTINGS, environ={"GW_SECRET": SECRET}, clock=clock)
    headers = bearer({"sub": "42", "exp": int(clock.now) + 5})
    assert auth.authenticate(headers).user_id == "42"
    verified: list[str] = []

    def verify_as_if_expired(token: str) -> None:  # what PyJWT says once the real clock passes exp
        verified.append(token)
        raise Unauthenticated("Token expired")

    monkeypatch.setattr(auth, "_verify", verify_as_if_expired)
    assert auth.authenticate(headers).user_id == "42"  # remembered
    assert verified == []
    clock.now += 6  # past exp: checked in full again (PyJWT then refuses it)
    with pytest.raises(Unauthenticated, match="expired"):
        auth.authenticate(headers)
    assert len(verified) == 1


def test_an_expired_token_is_refused() -> None:
    auth = JwtAuth(SETTINGS, environ={"GW_SECRET": SECRET})
    with pytest.raises(Unauthenticated, match="expired"):
        auth.authenticate(bearer({"sub": "42", "exp": int(time.time()) - 5}))


def test_a_remembered_token_is_verified_again_after_the_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    environ = {"GW_SECRET": SECRET}
    auth = JwtAuth(SETTINGS, environ=environ, clock=clock)
    headers = bearer({"sub": "42", "exp": int(clock.now) + 3600})
    assert auth.authenticate(headers).user_id == "42"
    verified: list[str] = []
    real_verify = auth._verify
    monkeypatch.setattr(auth, "_verify", lambda token: verified.append(token) or real_verify(token))
    auth.authenticate(headers)
    assert verified == []
    clock.now += client_auth.VERIFIED_TTL_S + 1
    auth.authenticate(headers)
    assert len(verified) == 1


def test_only_the_verified_token_string_is_remembered() -> None:
    clock = Clock()
    auth = JwtAuth(SETTINGS, environ={"GW_SECRET": SECRET}, clock=clock)
    claims = {"sub": "42", "exp": int(clock.now) + 3600}
    auth.authenticate(bearer(claims))
    with pytest.raises(Unauthenticated):  # same claims, wrong key: a different token, checked in full
        auth.authenticate(bearer(claims, key="another-secret-of-32-bytes-or-more!!"))
