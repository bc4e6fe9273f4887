"""Authenticate clients to the gateway: JWT, API key, OAuth2 introspection, session, or none.

A list of types (``FirstCarriedAuth``): the first whose credentials the request
carries decides. OAuth2 introspection lives in ``orchestration.edge.introspection``;
sessions are read by the web layer (``orchestration.web.session_auth``).

Secrets are references: the HS256 secret is read from the environment variable
the layer names, public keys from a file or a JWKS URL (``orchestration.edge.jwks``:
keys cached, refetched when a token names an unknown ``kid``, the last good set
kept while the URL fails). API keys are compared by their SHA-256 digest; the
plaintext is never stored. Every failure is ``Unauthenticated`` with a message
safe to show a client (no key material, no library internals): a token that
cannot be verified for any reason (malformed, an algorithm that does not fit
the key, an unknown ``kid``, no key set) is a 401, never a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jwt

from orchestration.edge.jwks import JwksKeys, KeyNotFound
from orchestration.errors import Unauthenticated
from orchestration.json_values import encodes_as_utf8
from orchestration.plan import ClientAuth, JwtSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: the id used for rate limits and cache scope, and the
    claims templates see as ``user``."""

    user_id: str | None
    claims: Mapping[str, Any] = field(default_factory=dict)
    scheme: str = ""  # the auth type that decided, when it matters ("session": unsafe methods need CSRF)


ANONYMOUS = Identity(user_id=None)


class Authenticator(Protocol):
    def authenticate(self, headers: Mapping[str, str]) -> Identity: ...


class NoAuth:
    def authenticate(self, headers: Mapping[str, str]) -> Identity:
        return ANONYMOUS


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyAuth:
    """``keys`` maps SHA-256 digests of active keys to the subject they stand for."""

    def __init__(self, keys: Mapping[str, str], header: str = "X-API-Key") -> None:
        self._keys = dict(keys)
        self._header = header.lower()

    def authenticate(self, headers: Mapping[str, str]) -> Identity:
        challenge = {"WWW-Authenticate": f'ApiKey realm="gateway", header="{self._header}"'}
        presented = headers.get(self._header, "")
        if not presented:
            raise Unauthenticated(f"Missing API key header {self._header}", headers=challenge)
        digest = hash_api_key(presented)
        for known, subject in self._keys.items():
            if hmac.compare_digest(known, digest):
                return Identity(user_id=subject, claims={"sub": subject})
        raise Unauthenticated("Invalid API key", headers=challenge)


KeyResolver = Callable[[str], Any]
VERIFIED_KEPT = 4096  # verified tokens remembered per authenticator
VERIFIED_TTL_S = 30.0  # a verified token is checked again at least this often


class JwtAuth:
    """Bearer JWTs: signature, ``exp`` (required), ``nbf``, issuer and audience."""

    def __init__(
        self,
        settings: JwtSettings,
        *,
        environ: Mapping[str, str] | None = None,
        jwks_refresh_cooldown_s: float = 30.0,
        jwks_failure_cooldown_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        environ = os.environ if environ is None else environ
        self._resolve_key = _key_resolver(settings, environ, jwks_refresh_cooldown_s, jwks_failure_cooldown_s)
        self._clock = clock
        self._verified: dict[str, tuple[Identity, float, float]] = {}

    def authenticate(self, headers: Mapping[str, str]) -> Identity:
        token = bearer_token(headers.get("authorization", ""))
        now = self._clock()
        known = self._verified.get(token)
        if known is not None and known[1] <= now < known[2]:
            return known[0]
        identity = self._verify(token)
        self._remember(token, identity, now)
        return identity

    def _remember(self, token: str, identity: Identity, now: float) -> None:
        """Keep a verified token for a short while: a client sends the same token on
        every request, and checking its signature again each time was a few per cent
        of a request's CPU. The token string (signature included) is the key, so
        only the very token that was verified is accepted, and only within the
        times it would pass again: after ``nbf``/``iat`` and before ``exp`` (with
        the leeway), and at most ``VERIFIED_TTL_S`` after it was verified."""
        claims, leeway = identity.claims, self._settings.leeway_s
        try:
            valid_from = max(int(claims.get(name, 0) or 0) for name in ("nbf", "iat")) - leeway
            valid_until = min(float(int(claims["exp"]) + leeway), now + VERIFIED_TTL_S)
        except (KeyError, TypeError, ValueError, OverflowError):
            return
        if len(self._verified) >= VERIFIED_KEPT:
            self._verified.clear()
        self._verified[token] = (identity, float(valid_from), valid_until)

    def _verify(self, token: str) -> Identity:
        settings = self._settings
        try:
            claims = jwt.decode(
                token,
                self._resolve_key(token),
                algorithms=list(settings.algorithms),
                issuer=settings.issuer,
                audience=settings.audience,
                leeway=settings.leeway_s,
                options={"require": ["exp"], "verify_aud": settings.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("Token expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("Token not yet valid") from None
        except (jwt.PyJWTError, KeyNotFound, _MissingKey):  # InvalidKeyError too: an alg that does not fit the key
            raise Unauthenticated("Invalid token") from None
        except Exception as error:  # noqa: BLE001 - a token that cannot be verified for any reason is a 401
            logger.warning("token verification failed: %s", type(error).__name__)
            raise Unauthenticated("Invalid token") from None
        if not encodes_as_utf8(claims):  # a "\ud800" escape: no key, header or URL could carry it
            raise Unauthenticated("Invalid token")
        user_id = claims.get(settings.user_claim)
        if user_id is None or isinstance(user_id, (dict, list)):
            raise Unauthenticated(f"Token has no '{settings.user_claim}' claim")
        return Identity(user_id=str(user_id), claims=claims)


class _MissingKey(Exception):
    """The configured key source is not available (env var unset, file gone)."""


def bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Missing bearer token")
    return token.strip()


def _key_resolver(
    settings: JwtSettings, environ: Mapping[str, str], refresh_cooldown_s: float, failure_cooldown_s: float
) -> KeyResolver:
    if settings.jwks_url:
        # A token naming an unknown kid forces one refetch per cooldown, so a
        # spray of forged kids cannot hammer the identity provider.
        keys = JwksKeys(settings.jwks_url, refresh_cooldown_s=refresh_cooldown_s, failure_cooldown_s=failure_cooldown_s)
        return lambda token: keys.key_for(jwt.get_unverified_header(token).get("kid"))
    if settings.public_key_file:
        path = Path(settings.public_key_file)
        key = path.read_text() if path.is_file() else None
        return lambda token: _require(key)
    secret = environ.get(settings.secret_env or "", "") or None
    return lambda token: _require(secret)


def _require(key: str | None) -> str:
    if key is None:
        raise _MissingKey
    return key


class SessionSource(Protocol):
    """The web framework's sessions (``orchestration.web.session_auth``): the engine stays framework-free."""

    @property
    def cookie_name(self) -> str: ...

    def identity(self, session_key: str) -> Identity | None: ...


def cookie_value(cookie_header: str, name: str) -> str:
    """One cookie's value from a ``Cookie`` header ("" when absent); lenient, never raises."""
    for part in cookie_header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            return value.strip().strip('"')
    return ""


class SessionAuth:
    """A logged-in user's session cookie (first-party web apps). The identity says
    ``scheme="session"``: the web layer then requires the CSRF token on unsafe methods."""

    def __init__(self, sessions: SessionSource | None) -> None:
        self._sessions = sessions

    def carried(self, headers: Mapping[str, str]) -> bool:
        return self._sessions is not None and bool(cookie_value(headers.get("cookie", ""), self._sessions.cookie_name))

    def authenticate(self, headers: Mapping[str, str]) -> Identity:
        if self._sessions is None:
            raise Unauthenticated("Session authentication is not available")
        key = cookie_value(headers.get("cookie", ""), self._sessions.cookie_name)
        if not key:
            raise Unauthenticated("Not logged in")
        try:
            identity = self._sessions.identity(key)
        except Exception as error:  # noqa: BLE001 - a session that cannot be read (store down) is a 401, never a 500
            logger.warning("session lookup failed: %s", type(error).__name__)
            raise Unauthenticated("Session could not be verified") from None
        if identity is None:
            raise Unauthenticated("Not logged in (session expired or unknown)")
        return identity


def _carries(kind: str, auth: ClientAuth) -> Callable[[Mapping[str, str]], bool]:
    """Whether a request carries the credentials of ``kind`` (not whether they are valid)."""
    if kind in ("jwt", "oauth2_introspection"):
        return lambda headers: headers.get("authorization", "").partition(" ")[0].lower() == "bearer"
    if kind == "api_key":
        header = auth.api_key_header.lower()
        return lambda headers: bool(headers.get(header, ""))
    return lambda headers: False


class FirstCarriedAuth:
    """``type: [a, b, ...]``: the first type whose credentials the request carries
    decides (its verdict stands, the others are not tried); none carried: 401."""

    def __init__(self, choices: list[tuple[Callable[[Mapping[str, str]], bool], Authenticator]], kinds: str) -> None:
        self._choices = choices
        self._kinds = kinds

    def authenticate(self, headers: Mapping[str, str]) -> Identity:
        for carried, authenticator in self._choices:
            if carried(headers):
                return authenticator.authenticate(headers)
        raise Unauthenticated(f"Missing credentials (accepted: {self._kinds})")


def build_authenticator(
    auth: ClientAuth,
    *,
    api_keys: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    sessions: SessionSource | None = None,
) -> Authenticator:
    """The authenticator for a layer's ``auth`` block (built once per plan)."""
    if not auth.types:
        return _one(auth.type, auth, api_keys, environ, sessions)
    choices: list[tuple[Callable[[Mapping[str, str]], bool], Authenticator]] = []
    for kind in auth.types:
        one = _one(kind, auth, api_keys, environ, sessions)
        choices.append((one.carried if isinstance(one, SessionAuth) else _carries(kind, auth), one))
    return FirstCarriedAuth(choices, ", ".join(auth.types))


def _one(
    kind: str,
    auth: ClientAuth,
    api_keys: Mapping[str, str],
    environ: Mapping[str, str] | None,
    sessions: SessionSource | None,
) -> Authenticator:
    if kind == "jwt":
        return JwtAuth(auth.jwt or JwtSettings(), environ=environ)
    if kind == "api_key":
        return ApiKeyAuth(api_keys, auth.api_key_header)
    if kind == "oauth2_introspection" and auth.introspection is not None:
        from orchestration.edge.introspection import IntrospectionAuth  # it imports this module

        return IntrospectionAuth(auth.introspection, environ=environ)
    if kind == "session":
        return SessionAuth(sessions)
    if kind == "none":
        return NoAuth()
    return RefuseAll()  # a type without its settings (the check refuses it): never an open door


class RefuseAll:
    def authenticate(self, headers: Mapping[str, str]) -> Identity:
        raise Unauthenticated("Client authentication is not configured")
