"""The CDN layer and the P99 target of an endpoint (contract section 8).

``cache.cdn: true`` makes a CDN in front of the gateway keep the entry and serve it to
anyone, without asking the gateway (``Cache-Control: public``). So it is allowed only
where one answer is right for every client: a cached (``ttl_s > 0``) ``shared``
entry. Whether ``shared`` itself is safe (no ``user``, no ``request.headers``, no
``bearer_forward`` call) is ``cache_rules.check_cache_scope``'s job, which reports it
at ``cache.scope`` — a ``cdn`` endpoint whose shared scope is refused is refused there.

``p99_target_ms`` above the endpoint's total deadline could never be crossed (the
gateway answers by the deadline), so that alert would never fire: refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.config.problems import Problem, key_location


def check_cdn_and_target(endpoint: Any, location: str, out: list[Problem]) -> None:
    if not isinstance(endpoint, Mapping):
        return
    _check_cdn(endpoint.get("cache"), key_location(location, "cache.cdn"), out)
    _check_p99_target(endpoint, location, out)


def _check_cdn(cache: Any, where: str, out: list[Problem]) -> None:
    if not isinstance(cache, Mapping) or cache.get("cdn") is not True:
        return
    ttl = cache.get("ttl_s", 0)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
        out.append(Problem(where, "cdn needs a cached endpoint: set ttl_s above 0"))
        return
    scope = cache.get("scope", "user")
    if scope != "shared":
        message = (
            f"cdn is refused with scope '{scope}': a CDN serves its copy to every client; "
            "only scope: shared entries (one answer for everyone) may be cached by a CDN"
        )
        out.append(Problem(where, message))


def _check_p99_target(endpoint: Mapping[str, Any], location: str, out: list[Problem]) -> None:
    target, timeout = endpoint.get("p99_target_ms"), endpoint.get("timeout_ms", 3000)
    if not _positive_int(target) or not _positive_int(timeout):
        return  # absent, or a type/range problem the structural check reports
    if target > timeout:
        message = (
            f"p99_target_ms {target} is above the endpoint's timeout_ms {timeout}: "
            "the gateway answers by its deadline, so this alert could never fire"
        )
        out.append(Problem(key_location(location, "p99_target_ms"), message))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
