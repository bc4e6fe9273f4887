"""A configuration document imported and served by this process's gateway, for a test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from gateway_project import wiring
from registry.services import config_import


@contextlib.contextmanager
def configured(document: dict[str, Any], *services: str) -> Iterator[None]:
    """``document`` imported, the runtime rebuilt from it and the named services' breakers
    closed (their state is shared through Redis with earlier tests); the runtime dropped after."""
    config_import(document=document)
    wiring.runtime_holder().invalidate()
    for service in services:
        wiring.runtime_holder().current().pool.breaker(service).reset()
    try:
        yield
    finally:
        wiring.runtime_holder().invalidate()
