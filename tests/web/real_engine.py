"""The gateway of the client-input tests: ``client_input_gateway.yaml`` served by
the real engine (executor, downstream clients, breakers) over
``httpx.MockTransport`` downstreams, behind the real edge on in-process stores.
The layer's ``auth`` block is one of ``AUTH_VARIANTS``; tokens and keys for each
come from ``Credentials``. Requests go through the production WSGI application
(``send``): Django's test client builds its own request object, and the
request object's constructor was one of the places client input crashed."""

from __future__ import annotations

import base64
import copy
import importlib
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from orchestration.downstream.pool import DownstreamPool
from orchestration.edge.cache import ResponseCache
from orchestration.edge.cache_store import InProcessCacheStore
from orchestration.edge.client_auth import hash_api_key
from orchestration.edge.client_ip import ClientIpResolver
from orchestration.edge.rate_store import InProcessRateStore
from orchestration.edge.ratelimit import RateLimiter
from orchestration.executor import Executor
from orchestration.plan import Plan
from orchestration.spawn import InlineSpawner
from orchestration.web import aggregate, edge
from orchestration.web.runtime import GatewayRuntime, LoadedConfig, build_runtime_parts
from registry.config.loading import config_read
from registry.config.plan import plan_from_document
from registry.config.validation import config_check
from tests.support.fake_downstream import start_fake_downstream, stop_fake_downstream
from tests.support.introspection_server import CLIENT_ID as INTROSPECTION_CLIENT_ID
from tests.support.introspection_server import CLIENT_SECRET as INTROSPECTION_CLIENT_SECRET
from tests.support.introspection_server import introspection_server

CONFIG = Path(__file__).with_name("client_input_gateway.yaml")
JWT_ENV = "CLIENT_INPUT_TEST_JWT_SECRET"
JWT_SECRET = "client-input-tests-secret-0123456789abcdef"
API_KEY = "gw_test_client_input_key"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())

AUTH_VARIANTS = ("none", "api_key", "jwt-hs", "jwt-rsa-es", "jwt-jwks", "introspection", "session-list")
INTROSPECTION_TOKENS = {"user-1": "opaque-token-user-1", "user-2": "opaque-token-user-2"}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Downstreams:
    """Every service answers 200 with JSON at once; hits are counted per service."""

    hits: Counter[str] = field(default_factory=Counter)
    requests: list[httpx.Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: httpx.Request) -> httpx.Response:
        service = request.url.host.split(".")[0]
        with self.lock:
            self.hits[service] += 1
            self.requests.append(request)
        return httpx.Response(200, json={"service": service, "path": request.url.path, "items": [{"sku": "a"}]})


def jwks_keys() -> list[dict[str, Any]]:
    """The key set at the JWKS URL: an RSA key, an EC key and a broken one."""
    return [
        {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key())), "kid": "rsa"},
        {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key())), "kid": "ec"},
        {"kty": "RSA", "kid": "broken", "n": "AQAB"},
    ]


def auth_block(variant: str, *, key_file: Path, jwks_url: str, introspection_url: str = "") -> dict[str, Any]:
    introspection = {
        "url": introspection_url,
        "client_id_env": "FUZZ_INTRO_ID",
        "client_secret_env": "FUZZ_INTRO_SECRET",
    }
    if variant == "introspection":
        return {"type": "oauth2_introspection", "oauth2_introspection": introspection}
    if variant == "session-list":  # a session cookie, else an introspected token, else an API key
        return {
            "type": ["session", "oauth2_introspection", "api_key"],
            "header": "X-API-Key",
            "oauth2_introspection": introspection,
            "session": {},
        }
    if variant == "api_key":
        return {"type": "api_key", "header": "X-API-Key"}
    if variant == "jwt-hs":
        return {"type": "jwt", "jwt": {"algorithms": ["HS256"], "secret_env": JWT_ENV}}
    if variant == "jwt-rsa-es":  # an RSA key, and ES256 allowed too: the forged-alg case
        return {"type": "jwt", "jwt": {"algorithms": ["RS256", "ES256"], "public_key_file": str(key_file)}}
    if variant == "jwt-jwks":
        return {"type": "jwt", "jwt": {"algorithms": ["RS256", "ES256"], "jwks_url": jwks_url}}
    return {"type": "none"}


@dataclass(frozen=True)
class Credentials:
    """What a legitimate client of the variant sends (WSGI environ keys)."""

    variant: str

    def valid(self, sub: str = "user-1") -> dict[str, str]:
        if self.variant in ("introspection", "session-list"):
            return {"HTTP_AUTHORIZATION": "Bearer " + INTROSPECTION_TOKENS[sub]}
        if self.variant == "api_key":
            return {"HTTP_X_API_KEY": API_KEY}
        return self.signed({"sub": sub, "exp": int(time.time()) + 3600})

    def signed(self, claims: Any) -> dict[str, str]:
        """A token the variant's key really signed, whatever its claims (none for other variants)."""
        if self.variant == "jwt-hs":
            token = jwt.api_jws.encode(json.dumps(claims).encode(), JWT_SECRET, algorithm="HS256")
        elif self.variant in ("jwt-rsa-es", "jwt-jwks"):
            token = jwt.api_jws.encode(json.dumps(claims).encode(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa"})
        else:
            return {}
        return {"HTTP_AUTHORIZATION": "Bearer " + token}


def load_plan(variant: str, *, key_file: Path, jwks_url: str, introspection_url: str = "") -> Plan:
    document = copy.deepcopy(config_read(CONFIG))
    document["layer"]["auth"] = auth_block(
        variant, key_file=key_file, jwks_url=jwks_url, introspection_url=introspection_url
    )
    problems = config_check(document)
    assert not problems, problems
    return plan_from_document(document, version=f"client-input-{variant}")


@dataclass
class Served:
    plan: Plan
    downstreams: Downstreams
    credentials: Credentials


@contextmanager
def serving(variant: str, tmp_dir: Path, environ: Callable[[str, str], None]) -> Iterator[Served]:
    """Install the variant's runtime and edge for the aggregate view; restore the old ones after."""
    environ(JWT_ENV, JWT_SECRET)
    key_file = tmp_dir / "rsa-public.pem"
    key_file.write_bytes(
        RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    jwks = start_fake_downstream({"/jwks.json": (200, {"keys": jwks_keys()})})  # a real JWKS URL on loopback
    idp_context = introspection_server()  # a real introspection endpoint on loopback
    idp = idp_context.__enter__()
    for sub, opaque in INTROSPECTION_TOKENS.items():
        idp.active(opaque, sub)
    environ("FUZZ_INTRO_ID", INTROSPECTION_CLIENT_ID)
    environ("FUZZ_INTRO_SECRET", INTROSPECTION_CLIENT_SECRET)
    plan = load_plan(variant, key_file=key_file, jwks_url=f"{jwks.url}/jwks.json", introspection_url=idp.url)
    downstreams = Downstreams()
    router, authenticator = build_runtime_parts(LoadedConfig(plan=plan, api_keys={hash_api_key(API_KEY): "app"}))
    pool = DownstreamPool(plan.services, lambda _service: httpx.MockTransport(downstreams.handle), environ={})
    executor = Executor(plan, pool, spawner=InlineSpawner())
    runtime = GatewayRuntime(plan, router, authenticator, executor, pool)
    importlib.import_module(settings.ROOT_URLCONF)  # runs wiring.install() now, not over our install
    runtime_before, edge_before = aggregate._runtime_source, edge.installed_edge()
    aggregate.install_runtime_source(lambda: runtime)
    edge.install_edge(
        edge.Edge(
            limiter=RateLimiter(InProcessRateStore()),
            cache=ResponseCache(InProcessCacheStore()),
            client_ips=ClientIpResolver([]),
            plan=lambda: plan,
        )
    )
    try:
        yield Served(plan, downstreams, Credentials(variant))
    finally:
        aggregate.install_runtime_source(runtime_before)  # type: ignore[arg-type]
        edge.install_edge(edge_before)
        stop_fake_downstream(jwks)
        idp_context.__exit__(None, None, None)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send(method: str, path: str, *, data: bytes = b"", content_type: str = "", **environ: str) -> Answer:
    return served_over_wsgi({"method": method, "path": path, "data": data, "content_type": content_type, **environ})


def served_over_wsgi(sent: dict[str, Any]) -> Answer:
    """One request through the WSGI application, with the environ a server builds
    (PATH_INFO percent-decoded, as latin-1 code points)."""
    from gateway_project.wsgi import application

    body: bytes = sent["data"]
    environ = {
        "REQUEST_METHOD": sent["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(sent["path"]).decode("latin-1"),
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "REMOTE_ADDR": "203.0.113.7",
        "CONTENT_TYPE": sent["content_type"],
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        **{k: v for k, v in sent.items() if k.isupper()},
    }
    started: list[Any] = []
    # As Django's test client does: the database connection an earlier test left is not
    # the request's to check or close (the aggregate view makes no query).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        chunks = application(environ, lambda status, headers, *exc: started.extend([status, headers]))
        try:
            content = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return Answer(int(started[0].split()[0]), dict(started[1]), content)
