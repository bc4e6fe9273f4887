"""JSON values the gateway passes on, checked once where they come in.

Python's ``json`` decodes a ``\\ud800`` escape (or UTF-16 text) into a string
holding an unpaired surrogate. No URL, header or UTF-8 answer can carry one, so
every later encode of it fails; a client body or token claims that hold one are
refused where they are read (400 / 401), not half-way through a plan run.
"""

from __future__ import annotations

import json
from typing import Any


def encodes_as_utf8(value: Any) -> bool:
    """False when a string anywhere in ``value`` (keys too) holds an unpaired surrogate,
    or when ``value`` (as parsed from JSON) nests too deep to be written out again."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return False
    return True
