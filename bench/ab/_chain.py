"""Helper for the per-piece A/B variants of issue 17 (directions 3-4): a second Django
handler built from ``settings.MIDDLEWARE`` with some entries removed, swapped in as
``gateway_project.wsgi.application`` by ``toggle``. The removed piece's work is skipped
(and what it adds to the answer is missing): what B saves is what the piece costs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings

import gateway_project.wsgi as wsgi
from gateway_project.wsgi_request import GatewayWSGIHandler


def handler_without(drop: Callable[[str], bool]) -> Any:
    original = list(settings.MIDDLEWARE)
    settings.MIDDLEWARE = [path for path in original if not drop(path)]
    try:
        handler = GatewayWSGIHandler()
    finally:
        settings.MIDDLEWARE = original
    return handler


def toggler(b_app: Any) -> Callable[[bool], None]:
    a_app = wsgi.application

    def toggle(on: bool) -> None:
        wsgi.application = b_app if on else a_app

    return toggle


def handler_replacing(replacements: dict[str, str]) -> Any:
    """A handler with some middlewares replaced by others (import paths)."""
    original = list(settings.MIDDLEWARE)
    settings.MIDDLEWARE = [replacements.get(path, path) for path in original]
    try:
        handler = GatewayWSGIHandler()
    finally:
        settings.MIDDLEWARE = original
    return handler
