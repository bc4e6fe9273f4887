"""Bearer tokens checked by OAuth2 token introspection (RFC 7662).

The gateway POSTs ``token=<the client's token>`` to the introspection URL,
authenticated with its client credentials (HTTP Basic, RFC 7662 section 2.1;
the id and secret are read from the env vars the layer names, never stored).

* An **active** answer is remembered for at most ``cache_s`` seconds and never
  past its ``exp``: a client sending the same token again is not re-checked.
  The memory is per worker process (a dict keyed by the token's SHA-256,
  bounded); each worker asks once per token per ``cache_s``.
* An **inactive** answer, an answer without the user claim, or an expired one
  is 401; inactive answers are not remembered (a spray of random tokens is held
  back by the ``ip`` rate limits, which count failed auth).
* A token that is not RFC 6750 ``b64token`` syntax (at most 4096 characters) is
  401 without asking; an endpoint refusing one token (a 4xx other than
  401/403/429) is a 401 for that token only.
* The endpoint **down** (unreachable, timeout, 5xx, 401/403/429 to the gateway's
  own credentials, not JSON): the token is
  401, and for ``failure_cooldown_s`` new tokens are refused without asking,
  so a failing identity provider is not hammered; tokens remembered from
  earlier answers keep serving throughout.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from orchestration.edge.client_auth import Identity, bearer_token
from orchestration.errors import Unauthenticated
from orchestration.json_values import encodes_as_utf8
from orchestration.plan import IntrospectionSettings

logger = logging.getLogger(__name__)

REMEMBERED_MAX = 10_000  # active answers kept per worker; the memory is cleared when full
Post = Callable[[str], Any]  # token -> the decoded JSON answer (raises when the endpoint fails)
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]{1,4096}=*$")  # RFC 6750 section 2.1, bounded


class IntrospectionRefused(Exception):
    """The endpoint refused this one request (a 4xx): not a sign that it is down."""


class IntrospectionAuth:
    def __init__(
        self,
        settings: IntrospectionSettings,
        *,
        environ: Mapping[str, str] | None = None,
        post: Post | None = None,
        clock: Callable[[], float] = time.time,
        failure_cooldown_s: float = 2.0,
        timeout_s: float = 3.0,
    ) -> None:
        self._settings = settings
        environ = os.environ if environ is None else environ
        credentials = (environ.get(settings.client_id_env, ""), environ.get(settings.client_secret_env, ""))
        self._post = post or _http_post(settings.url, credentials, timeout_s)
        self._clock = clock
        self._failure_cooldown_s = failure_cooldown_s
        self._quiet_until = -math.inf
        self._remembered: dict[str, tuple[Identity, float]] = {}  # sha256(token) -> (identity, until)

    def authenticate(self, headers: Mapping[str, str]) -> Identity:
        token = bearer_token(headers.get("authorization", ""))
        if not _B64TOKEN.match(token):
            raise Unauthenticated("Invalid token")  # never sent on: it cannot be a token
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        now = self._clock()
        known = self._remembered.get(key)
        if known is not None:
            if now < known[1]:
                return known[0]
            self._remembered.pop(key, None)
        if now < self._quiet_until:
            raise Unauthenticated("Token could not be verified (introspection unavailable)")
        try:
            answer = self._post(token)
        except IntrospectionRefused as error:
            logger.warning("token introspection at %s refused a token: %s", self._settings.url, error)
            raise Unauthenticated("Token could not be verified") from None
        except Exception as error:  # noqa: BLE001 - whatever the endpoint does, the client gets a 401
            self._quiet_until = now + self._failure_cooldown_s
            logger.warning("token introspection at %s failed: %s", self._settings.url, type(error).__name__)
            raise Unauthenticated("Token could not be verified (introspection unavailable)") from None
        identity, until = self._judge(answer, now)
        if len(self._remembered) >= REMEMBERED_MAX:
            self._remembered.clear()
        self._remembered[key] = (identity, until)
        return identity

    def _judge(self, answer: Any, now: float) -> tuple[Identity, float]:
        """The identity of an active answer and until when it may be reused; 401 otherwise."""
        if not isinstance(answer, dict) or answer.get("active") is not True or not encodes_as_utf8(answer):
            raise Unauthenticated("Token is not active")
        until = now + self._settings.cache_s
        exp = answer.get("exp")
        if exp is not None:
            if not _is_number(exp):
                raise Unauthenticated("Token is not active")
            if exp <= now:
                raise Unauthenticated("Token expired")
            until = min(until, float(exp))
        nbf = answer.get("nbf")
        if nbf is not None and (not _is_number(nbf) or nbf > now):
            raise Unauthenticated("Token not yet valid")
        user_id = answer.get(self._settings.user_claim)
        if user_id is None or isinstance(user_id, (dict, list, bool)):
            raise Unauthenticated(f"Token has no '{self._settings.user_claim}' claim")
        return Identity(user_id=str(user_id), claims=answer, scheme="oauth2_introspection"), until


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _http_post(url: str, credentials: tuple[str, str], timeout_s: float) -> Post:
    """POST the token as a form (RFC 7662 section 2.1); anything but a 200 JSON answer raises."""
    client = httpx.Client(timeout=timeout_s, follow_redirects=False, auth=credentials, trust_env=False)

    def post(token: str) -> Any:
        response = client.post(url, data={"token": token, "token_type_hint": "access_token"})
        if 400 <= response.status_code < 500 and response.status_code not in (401, 403, 429):
            raise IntrospectionRefused(f"introspection answered {response.status_code}")
        if response.status_code != 200:
            raise RuntimeError(f"introspection answered {response.status_code}")
        return response.json()

    return post
