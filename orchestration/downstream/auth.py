"""How the gateway authenticates to a downstream service.

Secrets are references: env var names are read at call time (so a rotated
secret is used without a restart) and never logged. The client's own
Authorization is passed on only for ``bearer_forward``. mTLS is not a header:
it shapes the transport (``transport_for``).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from orchestration.downstream.transport import Urllib3Transport
from orchestration.plan import DownstreamAuth, Service


class MissingCredential(Exception):
    """The env var a service's auth names is not set; nothing is sent."""

    def __init__(self, env_var: str) -> None:
        super().__init__(f"credential env var {env_var} is not set")
        self.env_var = env_var


def auth_headers(auth: DownstreamAuth, client_authorization: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    if auth.type == "bearer_forward":
        return {"Authorization": client_authorization} if client_authorization else {}
    if auth.type == "bearer":
        return {"Authorization": f"Bearer {_secret(auth.token_env, environ)}"}
    if auth.type == "api_key":
        return {auth.header or "X-API-Key": _secret(auth.key_env, environ)}
    return {}


def _secret(env_var: str | None, environ: Mapping[str, str]) -> str:
    value = environ.get(env_var) if env_var else None
    if not value:
        raise MissingCredential(env_var or "<unnamed>")
    return value


def transport_for(service: Service) -> httpx.BaseTransport:
    """The default transport: urllib3 pools sized to the bulkhead, with the
    service's client certificate and CA when it uses mTLS."""
    auth = service.auth
    if auth.type == "mtls":
        return Urllib3Transport(
            maxsize=service.bulkhead.max_concurrent,
            cert_file=auth.cert_file,
            key_file=auth.key_file,
            ca_file=auth.ca_file,
        )
    return Urllib3Transport(maxsize=service.bulkhead.max_concurrent)
