"""OAuth2 token introspection against a real HTTP endpoint on loopback (hits counted)."""

from __future__ import annotations

import pytest

from orchestration.edge.client_auth import build_authenticator
from orchestration.edge.introspection import IntrospectionAuth
from orchestration.errors import Unauthenticated
from orchestration.plan import ClientAuth, IntrospectionSettings
from tests.support.introspection_server import CLIENT_ID, CLIENT_SECRET, introspection_server

ENV = {"INTRO_ID": CLIENT_ID, "INTRO_SECRET": CLIENT_SECRET}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def settings(url: str, cache_s: int = 60) -> IntrospectionSettings:
    return IntrospectionSettings(url=url, client_id_env="INTRO_ID", client_secret_env="INTRO_SECRET", cache_s=cache_s)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_an_active_token_is_the_answer_user_and_is_reused_within_cache_s() -> None:
    with introspection_server() as idp:
        idp.active("tok-alice", "alice", scope="read")
        clock = Clock(idp.tokens["tok-alice"]["exp"] - 3600)
        auth = IntrospectionAuth(settings(idp.url, cache_s=60), environ=ENV, clock=clock)
        identity = auth.authenticate(bearer("tok-alice"))
        assert identity.user_id == "alice" and identity.claims["scope"] == "read"
        clock.now += 59
        auth.authenticate(bearer("tok-alice"))
        assert idp.hits == 1  # remembered
        clock.now += 2  # past cache_s: asked again
        auth.authenticate(bearer("tok-alice"))
        assert idp.hits == 2


def test_the_answer_is_never_reused_past_its_exp() -> None:
    with introspection_server() as idp:
        idp.active("short", "bob", ttl_s=10)
        clock = Clock(idp.tokens["short"]["exp"] - 10)
        auth = IntrospectionAuth(settings(idp.url, cache_s=60), environ=ENV, clock=clock)
        auth.authenticate(bearer("short"))
        clock.now += 11  # past exp, within cache_s: asked again, and the answer says expired
        with pytest.raises(Unauthenticated, match="expired"):
            auth.authenticate(bearer("short"))
        assert idp.hits == 2


def test_inactive_unknown_and_malformed_tokens_are_401() -> None:
    with introspection_server() as idp:
        idp.tokens["revoked"] = {"active": False, "sub": "eve"}
        idp.tokens["nosub"] = {"active": True}
        auth = IntrospectionAuth(settings(idp.url), environ=ENV)
        for token in ("revoked", "never-issued", "nosub"):
            with pytest.raises(Unauthenticated):
                auth.authenticate(bearer(token))
        assert idp.hits == 3
        for header in ({}, {"authorization": "Basic abc"}, bearer("has space"), bearer("x" * 5000), bearer("é")):
            with pytest.raises(Unauthenticated):
                auth.authenticate(header)
        assert idp.hits == 3  # never sent on


def test_endpoint_down_new_tokens_401_cached_answers_still_serve() -> None:
    with introspection_server() as idp:
        idp.active("known", "alice")
        idp.active("fresh", "bob")
        clock = Clock(idp.tokens["known"]["exp"] - 3600)
        auth = IntrospectionAuth(settings(idp.url), environ=ENV, clock=clock, failure_cooldown_s=2.0)
        auth.authenticate(bearer("known"))
        idp.failing = True
        with pytest.raises(Unauthenticated, match="unavailable"):
            auth.authenticate(bearer("fresh"))
        hits = idp.hits
        with pytest.raises(Unauthenticated):
            auth.authenticate(bearer("fresh"))  # within the cooldown: not asked
        assert idp.hits == hits
        assert auth.authenticate(bearer("known")).user_id == "alice"
        idp.failing = False
        clock.now += 3
        assert auth.authenticate(bearer("fresh")).user_id == "bob"


def test_unreachable_endpoint_is_401_and_wrong_client_credentials_are_refused() -> None:
    with introspection_server() as idp:
        url = idp.url
        idp.active("tok", "alice")
        wrong = IntrospectionAuth(settings(url), environ={"INTRO_ID": CLIENT_ID, "INTRO_SECRET": "nope"})
        with pytest.raises(Unauthenticated):
            wrong.authenticate(bearer("tok"))
        assert idp.bad_credentials == 1
    gone = IntrospectionAuth(settings(url), environ=ENV)  # the server is closed now
    with pytest.raises(Unauthenticated, match="unavailable"):
        gone.authenticate(bearer("tok"))


def test_a_list_of_types_the_first_carried_decides() -> None:
    from orchestration.edge.client_auth import hash_api_key

    with introspection_server() as idp:
        idp.active("tok", "alice")
        auth = build_authenticator(
            ClientAuth(type="api_key", types=("api_key", "oauth2_introspection"), introspection=settings(idp.url)),
            api_keys={hash_api_key("k-1"): "svc"},
            environ=ENV,
        )
        assert auth.authenticate({"x-api-key": "k-1"}).user_id == "svc"
        assert auth.authenticate(bearer("tok")).user_id == "alice"
        # the API key is carried, so it decides: a wrong key is 401 even with a good token
        with pytest.raises(Unauthenticated, match="Invalid API key"):
            auth.authenticate({"x-api-key": "wrong", **bearer("tok")})
        with pytest.raises(Unauthenticated, match="Missing credentials"):
            auth.authenticate({})
        with pytest.raises(Unauthenticated):  # a session type without a session source: 401, never open
            build_authenticator(ClientAuth(type="session"), api_keys={}).authenticate({"cookie": "sessionid=abc"})
        with pytest.raises(Unauthenticated):  # introspection without settings: refuses, never open
            build_authenticator(ClientAuth(type="oauth2_introspection"), api_keys={}).authenticate(bearer("tok"))
