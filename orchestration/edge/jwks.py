"""The public keys behind a ``jwks_url``, kept serving while the URL fails.

PyJWT's ``PyJWKClient`` does the HTTP (http/https only, no redirects, a
timeout); this module decides when to ask and what to keep:

* the set is fetched on first use and again ``lifespan_s`` after the last good
  fetch; a token naming an unknown ``kid`` (a key rotation) forces a refetch,
  at most once per ``refresh_cooldown_s``;
* a failed fetch (unreachable, an HTML page, not a key set, no usable signing
  key) keeps the last good set and is not retried for ``failure_cooldown_s``,
  so a failing identity provider is not asked on every request;
* one fetch at a time: while it runs, other requests use the set held (they
  wait only when there is none yet);
* each key is parsed on its own: a key PyJWT cannot use (an unknown ``kty``,
  missing fields) is skipped, the others serve. Symmetric (``oct``) keys are
  never taken from a URL.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import jwt

logger = logging.getLogger(__name__)

_PUBLIC_KEY_TYPES = ("RSA", "EC", "OKP")

Fetch = Callable[[], Any]  # the decoded JSON document at the URL


class KeyNotFound(Exception):
    """No key of the set held fits the token's ``kid`` (or there is no set yet)."""


class JwksKeys:
    def __init__(
        self,
        url: str,
        *,
        lifespan_s: float = 300.0,
        refresh_cooldown_s: float = 30.0,
        failure_cooldown_s: float = 5.0,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        fetch: Fetch | None = None,
    ) -> None:
        self._url = url
        self._fetch = fetch or jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout_s).fetch_data
        self._lifespan_s = lifespan_s
        self._refresh_cooldown_s = refresh_cooldown_s
        self._failure_cooldown_s = failure_cooldown_s
        self._clock = clock
        self._keys: Mapping[str, jwt.PyJWK] = {}
        self._stale_at = -math.inf  # when the set held is due for a refetch
        self._quiet_until = -math.inf  # no fetch before this (cooldown after every attempt)
        self._lock = threading.Lock()

    def key_for(self, kid: str | None) -> Any:
        """The verification key for ``kid`` (a ``cryptography`` public key)."""
        if self._clock() >= self._stale_at:
            self._refresh()
        found = self._keys.get(kid) if kid is not None else None
        if found is None and kid is not None:
            self._refresh()  # perhaps a new key: refetch, unless one was fetched just now
            found = self._keys.get(kid)
        if found is None:
            raise KeyNotFound(kid)
        return found.key

    def _refresh(self) -> None:
        if self._clock() < self._quiet_until:
            return
        if not self._lock.acquire(blocking=not self._keys):
            return  # another request is fetching; the set held serves meanwhile
        try:
            if self._clock() >= self._quiet_until:  # not fetched while this one waited
                self._fetch_now()
        finally:
            self._lock.release()

    def _fetch_now(self) -> None:
        try:
            keys = signing_keys(self._fetch())
        except Exception as error:  # noqa: BLE001 - whatever the URL answers, the last good set keeps serving
            self._quiet_until = self._clock() + self._failure_cooldown_s
            logger.warning("JWKS fetch from %s failed (%s); keeping %d known keys", self._url, error, len(self._keys))
            return
        now = self._clock()
        self._keys = keys
        self._stale_at = now + self._lifespan_s
        self._quiet_until = now + self._refresh_cooldown_s


def signing_keys(document: Any) -> dict[str, jwt.PyJWK]:
    """The usable public signing keys of a JWKS document, by ``kid``; raises when there is none."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set (no 'keys' list)")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not _is_public_signing_entry(entry):
            continue
        try:
            keys[entry["kid"]] = jwt.PyJWK(entry)
        except Exception:  # noqa: BLE001 - one key PyJWT cannot read (KeyError, ValueError...) must not hide the rest
            continue
    if not keys:
        raise ValueError("no usable signing key in the JWK set")
    return keys


def _is_public_signing_entry(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("kid"), str)
        and entry.get("kty") in _PUBLIC_KEY_TYPES
        and entry.get("use", "sig") == "sig"
        and "d" not in entry  # a private key published by mistake is not a verification key
    )
