"""Signatures of invalidation webhooks: ``sha256=<hex HMAC-SHA256 of the raw body>``.

The HMAC is over the exact bytes received (never a re-serialised body), and the
comparison is constant-time so a forger learns nothing from response timing. An
empty secret verifies nothing: a gateway without ``GATEWAY_WEBHOOK_SECRET``
refuses every webhook rather than accepting unsigned ones.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secret: str) -> bool:
    if not secret or not header or not header.startswith(PREFIX):
        return False
    presented = header[len(PREFIX) :].strip().lower()
    return hmac.compare_digest(presented.encode(), sign(body, secret)[len(PREFIX) :].encode())
