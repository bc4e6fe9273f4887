"""Checks of ``layer.auth`` the schema alone cannot express: one type or a list of
types, and each type's settings present exactly when that type is used."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.choices import ClientAuthType
from registry.config.problems import Problem, index_location, key_location, quoted
from registry.config.secrets import check_env_names
from registry.config.services_rules import check_base_url, check_jwt

_KINDS = tuple(ClientAuthType.values)
_SETTINGS = {"jwt": "jwt", "oauth2_introspection": "oauth2_introspection", "session": "session"}
_BEARER = ("jwt", "oauth2_introspection")  # both read `Authorization: Bearer`


def auth_kinds(auth: Any) -> tuple[str, ...]:
    """The types of an auth mapping in order (``type`` a string or a list); () when malformed."""
    kind = auth.get("type") if isinstance(auth, Mapping) else None
    if isinstance(kind, str):
        return (kind,)
    if isinstance(kind, list) and all(isinstance(k, str) for k in kind):
        return tuple(kind)
    return ()


def check_client_auth(auth: Any, location: str, out: list[Problem]) -> None:
    if not isinstance(auth, Mapping):
        return
    if not _check_types(auth.get("type"), key_location(location, "type"), out):
        return  # reported; anything more would be noise
    kinds = auth_kinds(auth)
    for kind, key in _SETTINGS.items():
        if kind in kinds and auth.get(key) is None and kind != "session":
            out.append(Problem(key_location(location, key), f"required when type is {quoted(kind)}"))
        if kind not in kinds and key in auth:
            out.append(Problem(key_location(location, key), f"only used when type is {quoted(kind)}"))
    if "api_key" not in kinds and "header" in auth:
        out.append(Problem(key_location(location, "header"), "only used when type is 'api_key'"))
    if isinstance(auth.get("jwt"), Mapping):
        check_jwt(auth["jwt"], key_location(location, "jwt"), out)
    introspection = auth.get("oauth2_introspection")
    if isinstance(introspection, Mapping):
        where = key_location(location, "oauth2_introspection")
        check_env_names(introspection, ("client_id_env", "client_secret_env"), where, out)
        if isinstance(introspection.get("url"), str):
            check_base_url(introspection["url"], key_location(where, "url"), out)


def _check_types(kind: Any, location: str, out: list[Problem]) -> bool:
    expected = f"expected one of: {', '.join(_KINDS)}"
    if isinstance(kind, str):
        if kind not in _KINDS:
            out.append(Problem(location, f"unknown value {quoted(kind)} ({expected})"))
            return False
        return True
    if not isinstance(kind, list):
        out.append(Problem(location, f"must be a string or a list of strings ({expected})"))
        return False
    if not kind:
        out.append(Problem(location, "at least one type is required"))
        return False
    ok = True
    for index, item in enumerate(kind):
        where = index_location(location, index)
        if not isinstance(item, str) or item not in _KINDS:
            out.append(Problem(where, f"unknown value {quoted(item)} ({expected})"))
            ok = False
        elif item == "none":
            out.append(Problem(where, "'none' cannot be one of a list: a request without credentials gets 401"))
            ok = False
        elif item in kind[:index]:
            out.append(Problem(where, f"{quoted(item)} is listed twice"))
            ok = False
        elif item in _BEARER and any(earlier in _BEARER for earlier in kind[:index]):
            out.append(Problem(where, f"{quoted(item)} never decides: an earlier type takes every bearer token"))
            ok = False
    return ok
