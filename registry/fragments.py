"""Check one edited object with the same validator as ``gateway check``.

The admin validates a service, the layer or an endpoint (with its calls) as a
fragment of the whole document, against what is currently in the registry, so
its errors read exactly like the command's (``endpoints[0].calls[1].path: ...``).
A layer or service edit is also checked against the cached endpoints it would
make unsafe (client auth turned off under ``scope: user``, ``bearer_forward``
under ``scope: shared``), since the endpoint's own check ran before the edit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from registry import models
from registry.config.cache_rules import check_cache_scope
from registry.config.problems import Problem, quoted
from registry.config.schema import SUPPORTED_VERSION
from registry.config.validation import config_check
from registry.documents import endpoint_document, layer_document, service_document
from registry.selectors import config_document_get, layer_get

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
    edited = service_document(service)
    found = _under(config_check(_document(services={service.name: edited})), prefix)
    stored = models.Service.objects.filter(pk=service.pk).values_list("name", flat=True).first() if service.pk else None
    if stored is None:
        return found  # a new service: no endpoint calls it yet
    current = config_document_get()
    changed = {**current, "services": {**current["services"], stored: edited}}
    return found + _scope_conflicts(current, changed, f"{prefix}.auth")


def layer_problems(layer: models.Layer) -> list[Problem]:
    """The layer's own fields (its rate limits are checked by their inline forms)."""
    edited = layer_document(layer)
    found = _under(config_check(_document(layer=edited)), "layer")
    current = config_document_get()
    return found + _scope_conflicts(current, {**current, "layer": edited}, "layer.auth.type")


def _scope_conflicts(current: dict[str, Any], changed: dict[str, Any], location: str) -> list[Problem]:
    """The cache-scope problems ``changed`` has and ``current`` has not, as problems of the edit."""
    before, after = _scope_problems(current), _scope_problems(changed)
    return [Problem(location, text) for text in after if text not in before]


def _scope_problems(document: dict[str, Any]) -> list[str]:
    texts: list[str] = []
    for endpoint in document["endpoints"]:
        found: list[Problem] = []
        auth = document["layer"].get("auth")
        check_cache_scope(endpoint, "", services=document["services"], client_auth=auth, out=found)
        texts += [f"endpoint {quoted(endpoint['name'])} {problem}" for problem in found]
    return texts


def endpoint_problems(endpoint: models.Endpoint, calls: Iterable[dict[str, Any]] | None = None) -> list[Problem]:
    """Without ``calls``: the endpoint's own fields, ignoring what templates read.

    With ``calls``: everything, references included, against current services.
    """
    services = {s.name: service_document(s) for s in models.Service.objects.all()}
    document = endpoint_document(endpoint, list(calls or []), ())
    found = config_check(_document(services=services, endpoint=document), references=calls is not None)
    return _under(found, ENDPOINT_LOCATION)
