"""Django's sessions for ``layer.auth.type: session``, read on the aggregate path only.

The session middleware runs only for the admin and the console
(``gateway_project.middleware``); an aggregate request whose layer uses session
auth reads the cookie here instead, and only then:

* the session is loaded through ``settings.SESSION_ENGINE``. With ``REDIS_URL``
  the engine is ``cached_db`` (settings.py), so a logged-in user's session comes
  from Redis, not the database; logout deletes it from both, so it stops
  working at once in every worker. Without Redis it is one database query.
* the user row (username, active, the password-derived session hash) is read
  through the session's auth backend and kept per worker for ``USER_TTL_S``:
  a password change or a deactivated user takes effect within that time.
  docs/adr/0007-session-auth-on-the-aggregate-path.md says why.
* the CSRF check is Django's own (``CsrfViewMiddleware.process_view``) with the
  token in the ``X-CSRFToken`` header (``settings.CSRF_HEADER_NAME``); the form
  field is not read (aggregate bodies are JSON).
"""

from __future__ import annotations

import re
import threading
import time
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.http import HttpRequest, HttpResponse, QueryDict
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.crypto import constant_time_compare
from django.utils.datastructures import MultiValueDict

from orchestration.edge.client_auth import Identity
from orchestration.errors import CsrfFailed

USER_TTL_S = 5.0
_USERS_KEPT = 10_000
_SANE_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{8,4096}$")  # cookie garbage never reaches a store


class DjangoSessions:
    """A ``SessionSource`` over Django's configured session engine and auth backends."""

    def __init__(self, *, user_ttl_s: float = USER_TTL_S) -> None:
        self._user_ttl_s = user_ttl_s
        self._users: dict[tuple[str, str], tuple[float, str, tuple[str, ...]] | None] = {}
        self._users_at: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    @property
    def cookie_name(self) -> str:
        return str(settings.SESSION_COOKIE_NAME)

    def identity(self, session_key: str) -> Identity | None:
        if not _SANE_KEY.match(session_key):
            return None
        session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        user_id, backend, offered_hash = (session.get(k) for k in (SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY))
        if user_id is None or backend not in settings.AUTHENTICATION_BACKENDS:
            return None
        user = self._user(str(user_id), str(backend))
        if user is None:
            return None
        _, username, hashes = user
        if not isinstance(offered_hash, str) or not any(constant_time_compare(offered_hash, h) for h in hashes):
            return None  # the password changed since this login (Django's session invalidation)
        return Identity(user_id=str(user_id), claims={"sub": str(user_id), "username": username}, scheme="session")

    def _user(self, user_id: str, backend: str) -> tuple[float, str, tuple[str, ...]] | None:
        key, now = (user_id, backend), time.monotonic()
        if now - self._users_at.get(key, -1e18) < self._user_ttl_s:
            return self._users.get(key)
        found = load_backend(backend).get_user(user_id)  # None for an inactive user (ModelBackend)
        entry = None
        if found is not None and hasattr(found, "get_session_auth_hash"):
            hashes = (found.get_session_auth_hash(), *_fallback_hashes(found))
            entry = (now, str(found.get_username()), hashes)
        with self._lock:
            if len(self._users_at) >= _USERS_KEPT:
                self._users.clear()
                self._users_at.clear()
            self._users[key], self._users_at[key] = entry, now
        return entry


def _fallback_hashes(user: Any) -> tuple[str, ...]:
    """Hashes under ``SECRET_KEY_FALLBACKS`` (a key rotation keeps sessions), as Django's ``get_user``."""
    fallback = getattr(user, "get_session_auth_fallback_hash", None)
    return tuple(fallback()) if callable(fallback) else ()


def _protected(request: HttpRequest) -> HttpResponse:  # stands in for a view that is not csrf_exempt
    return HttpResponse()


_csrf = CsrfViewMiddleware(_protected)


def require_csrf(request: HttpRequest) -> None:
    """Django's CSRF check (origin/referer for HTTPS, cookie vs ``X-CSRFToken``); ``CsrfFailed`` (403) if refused.
    Safe methods pass, as in Django."""
    if not hasattr(request, "_post"):
        # The body was received already (orchestration.web.request_body): the check must not
        # parse it as a form, so only the header token counts.
        request._post, request._files = QueryDict(), MultiValueDict()  # type: ignore[attr-defined]
    if _csrf.process_view(request, _protected, (), {}) is not None:
        raise CsrfFailed("CSRF token missing or incorrect (send it in the X-CSRFToken header)")
