"""Route a request path to an aggregate endpoint of the plan.

Endpoint paths may hold ``{param}`` segments; a parameter matches exactly one
non-empty path segment. Literal routes win over parameterised ones, so
``/dashboard/me`` can sit beside ``/dashboard/{user_id}``. A path with a ``.`` or
``..`` segment (percent-encoded too) matches nothing: a proxy or client that
normalises it would reach another endpoint than the one we would answer for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from orchestration.plan import Endpoint, Plan

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DOT_SEGMENTS = frozenset({".", ".."})


@dataclass(frozen=True, slots=True)
class Route:
    pattern: re.Pattern[str]
    literal_segments: int
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class Match:
    endpoint: Endpoint
    path_params: dict[str, str]


class NoRoute(Exception):
    """No endpoint has this path (``allowed`` is empty) or not for this method."""

    def __init__(self, allowed: tuple[str, ...] = ()) -> None:
        super().__init__("no route")
        self.allowed = allowed


def _pattern(full_path: str) -> re.Pattern[str]:
    parts: list[str] = []
    cursor = 0
    for match in _PARAM.finditer(full_path):
        parts.append(re.escape(full_path[cursor : match.start()]))
        parts.append(f"(?P<{match.group(1)}>[^/]+)")
        cursor = match.end()
    parts.append(re.escape(full_path[cursor:]))
    return re.compile("^" + "".join(parts) + r"/?\Z")  # \Z: "$" would also match before a trailing newline


def join_path(base_path: str, path: str) -> str:
    return "/" + "/".join(part for part in (base_path.strip("/"), path.strip("/")) if part)


class Router:
    """Built once per plan; ``resolve`` is a few regex matches per request."""

    def __init__(self, plan: Plan) -> None:
        routes = []
        for endpoint in plan.endpoints:
            full = join_path(plan.layer.base_path, endpoint.path)
            literal = sum(1 for seg in full.split("/") if seg and not _PARAM.fullmatch(seg))
            routes.append(Route(_pattern(full), literal, endpoint))
        self._routes = tuple(sorted(routes, key=lambda r: -r.literal_segments))

    def resolve(self, method: str, path: str) -> Match:
        if ("." in path or "%" in path) and _has_dot_segment(path):
            raise NoRoute()
        allowed: list[str] = []
        for route in self._routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.endpoint.method == method or (method == "HEAD" and route.endpoint.method == "GET"):
                params = {name: unquote(value) for name, value in found.groupdict().items()}
                return Match(route.endpoint, params)
            allowed.append(route.endpoint.method)
        raise NoRoute(tuple(dict.fromkeys(allowed)))


def _has_dot_segment(path: str) -> bool:
    """``/a/../b``, ``/a/./b``, ``/a/%2e%2E/b``: a segment that is ``.`` or ``..`` once decoded
    (parameters are decoded once more, so ``%2e`` left in the path would be a ``.`` value)."""
    return any(unquote(segment) in _DOT_SEGMENTS for segment in path.split("/"))
