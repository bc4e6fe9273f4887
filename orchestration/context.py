"""What the engine knows of one client request: plain values, no framework."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestContext:
    """A client request as templates see it (``request.*`` and ``user``)."""

    method: str
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: Any = None
    user: Mapping[str, Any] = field(default_factory=dict)  # verified claims; {} when auth is none
    request_id: str = ""
    authorization: str | None = None  # the client's Authorization, for bearer_forward only
    client_gone: Callable[[], bool] = field(default=lambda: False, repr=False, compare=False)  # asked before each stage

    def template_context(self) -> dict[str, Any]:
        return {
            "request": {
                "path": dict(self.path_params),
                "query": dict(self.query),
                "headers": dict(self.headers),
                "body": self.body,
            },
            "user": dict(self.user),
        }
