"""The one validator of a configuration document.

``gateway check``, the import and the admin forms all call ``config_check``: it
reports every problem (never only the first), each with its location, e.g.
``endpoints[0].calls[2].path: unknown call 'crt'``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from registry.config.cache_rules import check_cache_scope
from registry.config.cdn_rules import check_cdn_and_target
from registry.config.client_auth_rules import check_client_auth
from registry.config.endpoint_rules import check_endpoint, route_key
from registry.config.problems import Problem, index_location, key_location, quoted
from registry.config.schema import DOCUMENT, SUPPORTED_VERSION
from registry.config.services_rules import check_base_path, check_service
from registry.config.structure import check


def config_check(document: Any, *, references: bool = True) -> list[Problem]:
    """Every problem of ``document``, in document order.

    ``references=False`` skips what templates read (the admin checks an
    endpoint's own fields before its calls are known).
    """
    out: list[Problem] = []
    check(document, DOCUMENT, "", out)
    if not isinstance(document, Mapping):
        return out
    version = document.get("version")
    if isinstance(version, int) and version != SUPPORTED_VERSION:
        out.append(Problem("version", f"unsupported version {quoted(version)}; must be {SUPPORTED_VERSION}"))
    _check_layer(document.get("layer"), out)
    services = document.get("services")
    if isinstance(services, Mapping):
        for name, service in services.items():
            check_service(name, service, key_location("services", name), out)
    known = set(services) if isinstance(services, Mapping) else None
    layer = document.get("layer")
    client_auth = layer.get("auth") if isinstance(layer, Mapping) else {}
    registry = services if isinstance(services, Mapping) else {}
    endpoints = document.get("endpoints")
    for index, endpoint in enumerate(endpoints if isinstance(endpoints, list) else []):
        where = index_location("endpoints", index)
        check_endpoint(endpoint, where, known, out, references=references)
        check_cache_scope(endpoint, where, services=registry, client_auth=client_auth, out=out)
        check_cdn_and_target(endpoint, where, out)
    _check_duplicates(endpoints if isinstance(endpoints, list) else [], out)
    return _in_document_order(out, list(services) if isinstance(services, Mapping) else [])


def _check_layer(layer: Any, out: list[Problem]) -> None:
    if not isinstance(layer, Mapping):
        return
    check_base_path(layer.get("base_path"), "layer.base_path", out)
    check_client_auth(layer.get("auth"), "layer.auth", out)


def _check_duplicates(endpoints: list[Any], out: list[Problem]) -> None:
    names: dict[str, int] = {}
    routes: dict[tuple[str, str], int] = {}
    for index, endpoint in enumerate(endpoints):
        if not isinstance(endpoint, Mapping):
            continue
        where = index_location("endpoints", index)
        name, method, path = endpoint.get("name"), endpoint.get("method"), endpoint.get("path")
        if isinstance(name, str):
            if name in names:
                message = f"duplicate endpoint name {quoted(name)} (also endpoints[{names[name]}])"
                out.append(Problem(f"{where}.name", message))
            names.setdefault(name, index)
        if isinstance(method, str) and isinstance(path, str):
            key = route_key(method, path)
            if key in routes:
                message = f"duplicate method and path {method} {path} (also endpoints[{routes[key]}])"
                out.append(Problem(f"{where}.path", message))
            routes.setdefault(key, index)


_SECTIONS = {"version": 0, "layer": 1, "services": 2, "endpoints": 3}
_AFTER_CALLS = frozenset({"response", "cache", "rate_limits"})
_ENTITY = re.compile(r"^(?:services\.([^.\[]+)|endpoints\[(\d+)\](?:\.calls\[(\d+)\])?)")


def _in_document_order(problems: list[Problem], service_names: list[Any]) -> list[Problem]:
    """Grouped by section, service, endpoint and call, so the output reads top to bottom."""
    positions = {str(name): index for index, name in enumerate(service_names)}

    def key(problem: Problem) -> tuple[int, int, int]:
        section = _SECTIONS.get(re.split(r"[.\[]", problem.location, maxsplit=1)[0], 4)
        match = _ENTITY.match(problem.location)
        if match is None:
            return section, -1, -1
        service, endpoint, call = match.groups()
        entity = positions.get(service, -1) if service is not None else int(endpoint)
        if call is not None:
            return section, entity, int(call)
        tail = problem.location[match.end() :].lstrip(".").split(".")[0].split("[")[0]
        return section, entity, 1_000_000 if tail in _AFTER_CALLS else -1

    return sorted(problems, key=key)
