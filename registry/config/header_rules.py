"""Call headers the gateway never sends from a call's configuration.

``build_request`` drops a configured header named Host, Authorization, X-Request-ID,
Content-Length or a hop-by-hop header (``NOT_CONFIGURABLE_HEADERS``): the gateway writes
each itself. A file that declares one would otherwise pass the check and then silently not
send it; the check names it, with why, where it stands.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestration.downstream.request import NOT_CONFIGURABLE_HEADERS
from registry.config.problems import Problem, key_location

_NEVER_SENT = "never sent from a call's headers"
_WHY = {
    "host": f"{_NEVER_SENT}: the gateway sends the host of the service's base_url",
    "authorization": f"{_NEVER_SENT}: credentials come from the service's auth "
    "(bearer_forward passes the client's token on)",
    "proxy-authorization": f"{_NEVER_SENT}: credentials come from the service's auth",
    "x-request-id": f"{_NEVER_SENT}: the gateway sends the request's own X-Request-ID to every call",
    "content-length": f"{_NEVER_SENT}: the gateway frames the body itself",
}
_HOP_BY_HOP = f"{_NEVER_SENT}: a hop-by-hop header (the gateway manages its own connections)"
_LITERAL_CREDENTIALS = frozenset({"authorization", "proxy-authorization"})  # secrets.py reports a literal one


def check_call_headers(headers: Any, location: str, out: list[Problem]) -> None:
    if not isinstance(headers, Mapping):
        return
    for name, value in headers.items():
        lower = name.lower() if isinstance(name, str) else ""
        if lower not in NOT_CONFIGURABLE_HEADERS:
            continue
        if lower in _LITERAL_CREDENTIALS and isinstance(value, str) and "{{" not in value:
            continue  # "secret written inline" already says what to do instead
        out.append(Problem(key_location(location, name), _WHY.get(lower, _HOP_BY_HOP)))
