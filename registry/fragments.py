"""Check one edited object with the same validator as ``gateway check``.

The admin validates a service, the layer or an endpoint (with its calls) as a
fragment of the whole document, against what is currently in the registry, so
its errors read exactly like the command's (``endpoints[0].calls[1].path: ...``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from registry import models
from registry.config.problems import Problem
from registry.config.schema import SUPPORTED_VERSION
from registry.config.validation import config_check
from registry.documents import endpoint_document, layer_document, service_document
from registry.selectors import layer_get

ENDPOINT_LOCATION = "endpoints[0]"


def _document(
    *, layer: dict[str, Any] | None = None, services: dict[str, Any] | None = None, endpoint: Any = None
) -> dict[str, Any]:
    return {
        "version": SUPPORTED_VERSION,
        "layer": layer if layer is not None else _current_layer(),
        "services": services if services is not None else {},
        "endpoints": [endpoint] if endpoint is not None else [],
    }


def _current_layer() -> dict[str, Any]:
    layer = layer_get()
    return layer_document(layer, layer.rate_limits.all() if layer is not None else ())


def _under(problems: list[Problem], prefix: str) -> list[Problem]:
    return [p for p in problems if p.location == prefix or p.location.startswith((prefix + ".", prefix + "["))]


def service_problems(service: models.Service) -> list[Problem]:
    prefix = f"services.{service.name}"
    return _under(config_check(_document(services={service.name: service_document(service)})), prefix)


def layer_problems(layer: models.Layer) -> list[Problem]:
    """The layer's own fields (its rate limits are checked by their inline forms)."""
    return _under(config_check(_document(layer=layer_document(layer))), "layer")


def endpoint_problems(endpoint: models.Endpoint, calls: Iterable[dict[str, Any]] | None = None) -> list[Problem]:
    """Without ``calls``: the endpoint's own fields, ignoring what templates read.

    With ``calls``: everything, references included, against current services.
    """
    services = {s.name: service_document(s) for s in models.Service.objects.all()}
    document = endpoint_document(endpoint, list(calls or []), ())
    found = config_check(_document(services=services, endpoint=document), references=calls is not None)
    return _under(found, ENDPOINT_LOCATION)
