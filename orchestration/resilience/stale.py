"""Stale-if-error for optional calls (contract section 7, ``stale_if_error_s``).

Every good result of a call with ``stale_if_error_s`` is kept, under a key made of
the endpoint, the call id and the request as rendered (method, path, query,
headers, body, and the client's Authorization when the service forwards it, so a
stale answer never crosses to a user it was not made for), for
``stale_if_error_s`` seconds. When the call later fails, the newest kept result
for the same rendered request stands in for the fallback.

Results live in a ``CacheStore`` (``edge.cache_store``, the same seam the
response cache uses): Redis when configured, so every worker serves what any
worker last saw, in-process otherwise. A store that cannot answer (Redis down)
is never an error to the client: nothing is kept, and the fallback is used.

An unchanged result is not written again on every call: a process rewrites the
same body under the same key at most every ``REWRITE_S`` (or a tenth of
``stale_if_error_s`` when that is shorter), so a busy call with a steady answer
costs no store write per call (in Redis a round trip: ~5 % of a checkout's CPU,
bench/ab/resilience_features.py). The price: a kept result may be up to that
long older than the newest good one, and expire up to that much sooner.

The key and the kept body are written by orjson (the text ``json.dumps`` compact and
non-ASCII-escaping gives, ``fast_json``), the standard library only for what orjson
refuses: ``json`` took ~20 µs of every such call (bench/README.md, issue 14).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from orchestration.downstream.request import RequestSpec
from orchestration.edge.cache_store import CacheStore, InProcessCacheStore
from orchestration.edge.redis_boundary import StoreUnavailable

REWRITE_S = 1.0  # an unchanged result is written again at most this often per process
REMEMBERED = 4096  # keys whose last write this process remembers (the oldest forgotten first)


@dataclass(frozen=True, slots=True)
class StaleResult:
    body: Any
    age_s: float


StoreErrorListener = Callable[[str, Exception], None]


def stale_key(endpoint: str, call_id: str, spec: RequestSpec, *, forwards_authorization: bool) -> str:
    """The rendered request's identity: equal requests share a kept result."""
    return _digest(_json(_identity(endpoint, call_id, spec, forwards_authorization), default=str))


def _identity(endpoint: str, call_id: str, spec: RequestSpec, forwards_authorization: bool) -> list[Any]:
    return [
        endpoint,
        call_id,
        spec.method,
        spec.path,
        spec.params,
        sorted([(name.lower(), value) for name, value in spec.headers]) if spec.headers else (),
        spec.has_body,
        spec.json_body,
        spec.client_authorization if forwards_authorization else None,
    ]


def _digest(identity: bytes) -> str:
    # BLAKE2b (CPython's own), not SHA-256 (OpenSSL's): in the gateway process a SHA-256
    # cost ~7 µs where BLAKE2b costs ~2.5 (bench/README.md, issue 14, session 2026-12-05).
    return hashlib.blake2b(identity, digest_size=32).hexdigest()


def _json(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """Compact UTF-8 JSON as ``json.dumps(separators=(",", ":"), ensure_ascii=False)``
    writes it (``fast_json``); unpaired surrogates kept (``surrogatepass``), as before."""
    try:
        return orjson.dumps(value, default=default)
    except TypeError:  # big integers, non-string keys, unpaired surrogates: as json writes them
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=default)
        return text.encode("utf-8", "surrogatepass")


class StaleResults:
    """Keeps and recalls last good results over a ``CacheStore``."""

    def __init__(
        self,
        store: CacheStore | None = None,
        *,
        wall: Callable[[], float],
        on_store_error: StoreErrorListener | None = None,
    ) -> None:
        self._store: CacheStore = store if store is not None else InProcessCacheStore(clock=wall)
        self._wall = wall
        self._on_store_error = on_store_error
        # key (or the request's identity, ``keep_result``) -> (when, body as JSON) of this process's last write
        self._written: dict[str | bytes, tuple[float, bytes]] = {}

    def keep_result(
        self, endpoint: str, call_id: str, spec: RequestSpec, body: Any, forwards_authorization: bool, max_age_s: float
    ) -> None:
        """``keep(stale_key(...), body)`` in one step, as every good call does: the request's
        identity is serialised once and remembered as it is, and hashed into the key only when
        the store is written (at most every ``REWRITE_S`` for a steady answer)."""
        identity = _json(_identity(endpoint, call_id, spec, forwards_authorization), default=str)
        self._keep(identity, _digest, body, max_age_s)

    def keep(self, key: str, body: Any, *, max_age_s: float) -> None:
        self._keep(key, str, body, max_age_s)

    def _keep(self, remembered: str | bytes, key_of: Callable[[Any], str], body: Any, max_age_s: float) -> None:
        """Writes ``body`` under ``key_of(remembered)`` unless this process wrote the same one
        a moment ago; ``remembered``: what ``_written`` knows it by."""
        now = self._wall()
        text = _json(body)
        last = self._written.get(remembered)
        if last is not None and last[1] == text and now - last[0] < min(REWRITE_S, max_age_s / 10):
            return  # the same result was kept a moment ago
        payload = b'{"at":%s,"body":%s}' % (repr(now).encode(), text)
        try:
            self._store.put(key_of(remembered), payload, ttl_s=max_age_s, tags=(), started_at=float("inf"))
        except StoreUnavailable as error:
            self._store_error(error)
            return
        self._written.pop(remembered, None)
        self._written[remembered] = (now, text)
        if len(self._written) > REMEMBERED:
            self._written.pop(next(iter(self._written)))

    def recall(self, key: str, *, max_age_s: float) -> StaleResult | None:
        try:
            entry = self._store.get(key)
        except StoreUnavailable as error:
            self._store_error(error)
            return None
        if entry is None:
            return None
        kept = json.loads(entry.payload)
        age_s = max(0.0, self._wall() - float(kept["at"]))
        if age_s > max_age_s:  # kept under a longer stale_if_error_s than the one in force now
            return None
        return StaleResult(kept["body"], age_s)

    def _store_error(self, error: Exception) -> None:
        if self._on_store_error is not None:
            self._on_store_error("stale", error)
