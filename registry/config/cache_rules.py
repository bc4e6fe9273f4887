"""One user's answer is never served to another: a cached endpoint's scope against what it reads.

A shared entry is one answer for every client, so a shared endpoint may not depend on
who asks: no call to a ``bearer_forward`` service (the service answers for the client's
own credentials) and no template reading ``user`` or ``request.headers``. A user entry
is keyed by the user id, so it needs client auth: with ``layer.auth.type: none`` every
client has the same (missing) id. Only cached endpoints (``ttl_s > 0``) are held to it.
What a template reads comes from its compiled expressions (``Template.reads``), never
from its text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from orchestration.templates import FieldPath, TemplateError, compile_template
from registry.config.problems import Problem, index_location, key_location, quoted
from registry.config.references import template_leaves

# What a shared answer must not read, by the name a user writes it with.
_WHO_ASKS: tuple[tuple[str, FieldPath], ...] = (("user", ("user",)), ("request.headers", ("request", "headers")))
_CALL_TEMPLATES = ("path", "query", "headers", "body")


def check_cache_scope(
    endpoint: Any, location: str, *, services: Mapping[str, Any], client_auth: Any, out: list[Problem]
) -> None:
    """Refuse a scope under which one client's answer could reach another."""
    cache = endpoint.get("cache") if isinstance(endpoint, Mapping) else None
    if not isinstance(cache, Mapping) or not _caches(cache.get("ttl_s", 0)):
        return
    where = key_location(location, "cache.scope")
    scope = cache.get("scope", "user")
    if scope == "user" and _auth_type(client_auth) == "none":
        message = (
            "scope 'user' keys entries by the user id, but layer.auth.type is 'none': every client "
            "would get the same entry; use scope: shared, or turn on client auth"
        )
        out.append(Problem(where, message))
    if scope == "shared":
        for reason in _depends_on_the_client(endpoint, services):
            out.append(
                Problem(where, f"a shared entry would serve one user's answer to another: {reason}; use scope: user")
            )


def _depends_on_the_client(endpoint: Mapping[str, Any], services: Mapping[str, Any]) -> Iterator[str]:
    """Why the endpoint's answer depends on who asks (locations relative to the endpoint)."""
    calls = endpoint.get("calls")
    for index, call in enumerate(calls if isinstance(calls, list) else []):
        if not isinstance(call, Mapping):
            continue
        where = index_location("calls", index)
        service = call.get("service")
        definition = services.get(service) if isinstance(service, str) else None
        if isinstance(definition, Mapping) and _auth_type(definition.get("auth")) == "bearer_forward":
            yield f"{where} sends the client's credentials to service {quoted(service)} (auth bearer_forward)"
        for key in _CALL_TEMPLATES:
            if key in call:
                yield from _reads_of_the_client(call[key], key_location(where, key))
        graphql = call.get("graphql")  # its query is not a template, its variables are
        if isinstance(graphql, Mapping) and "variables" in graphql:
            yield from _reads_of_the_client(graphql["variables"], key_location(where, "graphql.variables"))
    if "response" in endpoint:
        yield from _reads_of_the_client(endpoint["response"], "response")
    cache = endpoint.get("cache")
    if isinstance(cache, Mapping) and isinstance(cache.get("tags"), list):
        yield from _reads_of_the_client(cache["tags"], "cache.tags")


def _reads_of_the_client(source: Any, location: str) -> Iterator[str]:
    ignored: list[Problem] = []  # bad keys and templates are reported by check_template
    for where, text in template_leaves(source, location, ignored):
        try:
            template = compile_template(text, where)
        except TemplateError:
            continue
        names = [name for name, prefix in _WHO_ASKS if template.reads_below(prefix)]
        if names:
            yield f"{where} reads " + " and ".join(quoted(name) for name in names)


def _auth_type(auth: Any) -> Any:
    """The ``type`` of an auth mapping; a missing mapping is the default, ``none``."""
    if auth is None:
        return "none"
    return auth.get("type") if isinstance(auth, Mapping) else None


def _caches(ttl: Any) -> bool:
    return isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0
