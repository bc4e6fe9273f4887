"""A/B for bench/micro.py --ab: B = the per-request keys (``dedupe_key``, ``call_cache_key``,
the response cache's ``cache_key``) digested by BLAKE2b (32 bytes, CPython's own) instead of
SHA-256 (OpenSSL's); A = SHA-256, as before. Same material, same JSON."""

import hashlib
import types
from typing import Any

from orchestration import call_cache
from orchestration.downstream import dedupe
from orchestration.edge import cache


def _blake2b(data: bytes = b"") -> Any:
    return hashlib.blake2b(data, digest_size=32)


_B = types.SimpleNamespace(sha256=_blake2b)
_MODULES = (dedupe, call_cache, cache)


def toggle(on: bool) -> None:
    for module in _MODULES:
        module.hashlib = _B if on else hashlib  # type: ignore[attr-defined]
