"""Checks of the layer and the services that the schema alone cannot express."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from registry.config.problems import Problem, key_location, quoted
from registry.config.resilience_rules import check_resilience
from registry.config.secrets import check_env_names, check_file_paths, check_url_credentials

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_AUTH_KEYS = {
    "none": (),
    "bearer_forward": (),
    "bearer": ("token_env",),
    "api_key": ("header", "key_env"),
    "mtls": ("cert_file", "key_file", "ca_file"),
}
_AUTH_REQUIRED = {"bearer": ("token_env",), "api_key": ("header", "key_env"), "mtls": ("cert_file", "key_file")}


def check_base_path(value: Any, location: str, out: list[Problem]) -> None:
    if not isinstance(value, str):
        return
    if not value.startswith("/"):
        out.append(Problem(location, f"must start with '/', got {quoted(value)}"))
    elif value != "/" and value.endswith("/"):
        out.append(Problem(location, f"must not end with '/', got {quoted(value)}"))
    if any(char in value for char in "{}?#"):
        out.append(Problem(location, f"must be a plain path (no '{{', '?', '#'), got {quoted(value)}"))


def check_jwt(jwt: Mapping[str, Any], location: str, out: list[Problem]) -> None:
    check_env_names(jwt, ("secret_env",), location, out)
    check_file_paths(jwt, ("public_key_file",), location, out)
    algorithms = jwt.get("algorithms", ["HS256"])
    if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
        return
    where = key_location(location, "algorithms")
    hmac = any(a.startswith("HS") for a in algorithms)
    public = any(not a.startswith("HS") for a in algorithms)
    if not algorithms:
        out.append(Problem(where, "at least one algorithm is required"))
    if hmac and public:
        out.append(Problem(where, "do not mix HMAC (HS*) and public-key algorithms: it allows algorithm confusion"))
    if hmac and not jwt.get("secret_env"):
        out.append(Problem(key_location(location, "secret_env"), "required for HS* algorithms"))
    if public and not (jwt.get("public_key_file") or jwt.get("jwks_url")):
        out.append(Problem(key_location(location, "public_key_file"), "public_key_file or jwks_url is required"))
    if isinstance(jwt.get("jwks_url"), str):
        check_base_url(jwt["jwks_url"], key_location(location, "jwks_url"), out)


def check_base_url(url: str, location: str, out: list[Problem]) -> None:
    if check_url_credentials(url, location, out):
        return
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        out.append(Problem(location, f"invalid URL {quoted(url)}: {exc}"))
        return
    if parts.scheme not in {"http", "https"} or not host:
        out.append(Problem(location, f"invalid URL {quoted(url)}: must be http:// or https:// with a host"))
    elif parts.query or parts.fragment:
        out.append(Problem(location, f"invalid URL {quoted(url)}: no query or fragment allowed"))


def check_service(name: Any, service: Any, location: str, out: list[Problem]) -> None:
    if not isinstance(name, str) or not SLUG.match(name):
        out.append(Problem(location, "service names must be lower-case slugs (letters, digits, '-', '_')"))
    if not isinstance(service, Mapping):
        return
    if isinstance(service.get("base_url"), str):
        check_base_url(service["base_url"], key_location(location, "base_url"), out)
    if isinstance(service.get("auth"), Mapping):
        _check_service_auth(service["auth"], key_location(location, "auth"), out)
    check_resilience(service, location, out)


def _check_service_auth(auth: Mapping[str, Any], location: str, out: list[Problem]) -> None:
    kind = auth.get("type")
    if not isinstance(kind, str) or kind not in _AUTH_KEYS:
        return
    for key in auth:
        if key != "type" and key in {k for keys in _AUTH_KEYS.values() for k in keys} and key not in _AUTH_KEYS[kind]:
            out.append(Problem(key_location(location, key), f"not used by auth type '{kind}'"))
    for key in _AUTH_REQUIRED.get(kind, ()):
        if not auth.get(key):
            out.append(Problem(key_location(location, key), f"required for auth type '{kind}'"))
    check_env_names(auth, ("token_env", "key_env"), location, out)
    check_file_paths(auth, ("cert_file", "key_file", "ca_file"), location, out)
