"""Can a checked document be served *here and now*? Used before a rollback.

``config_check`` judges a document on its own; an old version may also point at
secrets this deployment no longer has (an env var removed, a key file gone) or hold
templates today's compiler refuses. A rollback to such a version is refused with
these problems instead of recording a version that cannot serve.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from orchestration.templates import TemplateError
from registry.config.plan import plan_from_document
from registry.config.problems import Problem, key_location
from registry.config.validation import config_check

_ENV_KEYS = ("secret_env", "token_env", "key_env", "client_id_env", "client_secret_env")
_FILE_KEYS = ("public_key_file", "cert_file", "key_file", "ca_file")


def serving_problems(document: Any, *, environ: Mapping[str, str] | None = None) -> list[Problem]:
    """``config_check``'s problems, then what this process could not serve."""
    problems = compile_problems(document)
    if problems:
        return problems
    env = os.environ if environ is None else environ
    out: list[Problem] = []
    layer_auth = document["layer"].get("auth") or {}
    _references(layer_auth.get("jwt") or {}, "layer.auth.jwt", env, out)
    introspection = layer_auth.get("oauth2_introspection") or {}
    _references(introspection, "layer.auth.oauth2_introspection", env, out)
    for name, service in document["services"].items():
        _references(service.get("auth") or {}, f"{key_location('services', name)}.auth", env, out)
    return out


def compile_problems(document: Any) -> list[Problem]:
    """``config_check``'s problems, or the template the compiler refuses."""
    problems = config_check(document)
    if problems:
        return problems
    try:
        plan_from_document(document, version="check")
    except TemplateError as exc:
        return [Problem(exc.location, exc.message)]
    return []


def _references(section: Mapping[str, Any], location: str, env: Mapping[str, str], out: list[Problem]) -> None:
    for key in _ENV_KEYS:
        name = section.get(key)
        if isinstance(name, str) and name and not env.get(name):
            out.append(Problem(f"{location}.{key}", f"environment variable {name} is not set"))
    for key in _FILE_KEYS:
        path = section.get(key)
        if isinstance(path, str) and path and not os.path.isfile(path):
            out.append(Problem(f"{location}.{key}", f"file {path} does not exist"))
