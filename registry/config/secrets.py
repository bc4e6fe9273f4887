"""Secrets are references, never values (ARCHITECTURE.md rule 7).

These checks catch the ways a secret slips into a file anyway: a value where an
env var name belongs, key material where a file path belongs, credentials in a
URL, or a literal ``Authorization`` header on a call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from registry.config.problems import Problem, key_location

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"})
_CREDENTIAL_PARAMS = frozenset({"api_key", "apikey", "key", "token", "access_token", "secret", "password"})


def check_env_names(section: Mapping[str, Any], keys: tuple[str, ...], location: str, out: list[Problem]) -> None:
    """``*_env`` values must name an environment variable, not hold the secret."""
    for key in keys:
        value = section.get(key)
        if isinstance(value, str) and not ENV_NAME.match(value):
            out.append(
                Problem(
                    key_location(location, key),
                    "must name an environment variable (like GATEWAY_JWT_SECRET), not hold a value; "
                    "a secret written inline is never accepted",
                )
            )


def check_file_paths(section: Mapping[str, Any], keys: tuple[str, ...], location: str, out: list[Problem]) -> None:
    """``*_file`` values are paths; PEM text pasted in is a secret written inline."""
    for key in keys:
        value = section.get(key)
        if isinstance(value, str) and ("-----BEGIN" in value or "\n" in value):
            out.append(Problem(key_location(location, key), "secret written inline; give the path of the file"))


def check_url_credentials(url: str, location: str, out: list[Problem]) -> bool:
    """A ``user:password@`` in a URL is a secret written inline."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None:
        out.append(Problem(location, "secret written inline: credentials in the URL; use the service's auth"))
        return True
    return False


def check_literal_credentials(section: Any, location: str, *, headers: bool, out: list[Problem]) -> None:
    """A call header or query parameter that carries a fixed credential."""
    if not isinstance(section, Mapping):
        return
    names = _CREDENTIAL_HEADERS if headers else _CREDENTIAL_PARAMS
    for name, value in section.items():
        if isinstance(name, str) and name.lower() in names and isinstance(value, str) and "{{" not in value:
            out.append(
                Problem(
                    key_location(location, name),
                    "secret written inline; use the service's auth (token_env, key_env) instead",
                )
            )
