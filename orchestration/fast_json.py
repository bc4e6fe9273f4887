"""JSON in C (orjson) on the hot path, with the standard library's meaning kept.

Every request parses its body and five downstream answers and writes one or more
JSON documents; ``json`` does that in Python-level code around a C scanner, orjson
entirely in C (bench/README.md, round 5, measures the difference). orjson is used
only where it gives exactly what ``json`` gave; everything else falls back to the
standard library, so the accepted documents, the errors and the values are the
same as before:

- reading: orjson takes strict UTF-8 JSON. A BOM, UTF-16/32 text, an unpaired
  ``\\ud800`` escape, NaN/Infinity, ``1e400`` and nesting past 1024 levels are
  refused by it and decided by the caller's standard-library path as before.
  orjson reads an integer beyond 64 bits as a float (precision lost), so a body
  holding a run of 19 or more digits goes to the standard library too.
- writing: orjson writes the same compact, non-ASCII-escaping text as
  ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)`` encoded to
  UTF-8, except the spelling of exponents (``1e-7`` for ``1e-07``, the same
  number) and non-finite floats (``null``, where ``json`` wrote the non-JSON
  ``Infinity``; JSON read by the gateway holds one only from an overflowing
  literal such as ``1e400``). Integers beyond 64 bits, non-string keys and
  strings holding unpaired surrogates are refused by orjson and written (or
  refused) by ``json`` as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson

_BIG_INTEGER = re.compile(rb"\d{19}")  # may exceed 64 bits: orjson would make it a float


class NotFast(Exception):
    """orjson cannot give the standard library's answer for this document: use ``json``."""


def loads(raw: bytes) -> Any:
    """``raw`` parsed by orjson, or ``NotFast`` when the standard library must decide."""
    if _BIG_INTEGER.search(raw) is not None:
        raise NotFast()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise NotFast() from None


def loads_or(raw: bytes, fallback: Callable[[bytes], Any]) -> Any:
    """orjson when it gives the standard library's answer, else ``fallback(raw)``."""
    try:
        return loads(raw)
    except NotFast:
        return fallback(raw)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``
    encoded to UTF-8 (raising what that raises for a value orjson refuses)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
