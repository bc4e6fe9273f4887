"""The edge around a plan run, at the HTTP level: admission and the response cache.

``admit`` runs after routing: client auth, then one rate-limit round trip for
every rule of the layer and the endpoint. A client that fails auth is still
counted (as anonymous, by IP), so a spray of bad tokens is limited too; over a
limit it gets 429/503, otherwise its 401. A request authenticated by a session
cookie must pass Django's CSRF check on unsafe methods (403 ``CSRF_FAILED``,
counted like a failed auth). The admitted request's
``RateLimit-*`` headers go on whatever it is finally answered.

``respond`` runs the plan through the response cache when the endpoint is a GET
with ``ttl_s > 0`` and the request is GET or HEAD; any other answer is marked
``Cache-Control: no-store``. The edge objects are built once by
``gateway_project.wiring`` and installed here; without them requests are
served unlimited and uncached.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse

from orchestration.context import RequestContext
from orchestration.edge.cache import CacheRequest, ResponseCache, Storable, cache_key, is_cacheable
from orchestration.edge.cdn import CdnPurger
from orchestration.edge.client_auth import ANONYMOUS, Identity
from orchestration.edge.client_ip import ClientIpResolver
from orchestration.edge.ratelimit import RateLimiter, RateSubject, RateVerdict
from orchestration.errors import CsrfFailed, Failure, GatewayError, Unauthenticated
from orchestration.plan import Endpoint, Plan
from orchestration.routing import Match
from orchestration.web.client_request import lower_headers
from orchestration.web.runtime import GatewayRuntime
from orchestration.web.session_auth import require_csrf

FILL_MARGIN_S = 1.0  # a fill may hold its key a little past the endpoint's deadline


@dataclass(frozen=True, slots=True)
class Edge:
    limiter: RateLimiter
    cache: ResponseCache
    client_ips: ClientIpResolver
    plan: Callable[[], Plan]  # the plan being served (invalidation renders its rules)
    cdn: CdnPurger | None = None  # GATEWAY_CDN_PURGE_URL set: invalidations purge the CDN too


_edge: Edge | None = None


def install_edge(edge: Edge | None) -> None:
    """Called once by ``gateway_project.wiring``; tests install their own."""
    global _edge
    _edge = edge


def installed_edge() -> Edge | None:
    return _edge


@dataclass(frozen=True, slots=True)
class Admission:
    identity: Identity
    headers: Mapping[str, str] = field(default_factory=dict)

    def add_headers(self, error: GatewayError) -> GatewayError:
        error.headers = {**self.headers, **error.headers}
        return error

    def decorate(self, response: HttpResponse) -> HttpResponse:
        for name, value in self.headers.items():
            response[name] = value
        if not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        return response


def client_ip(request: HttpRequest, resolver: ClientIpResolver) -> str:
    return resolver.client_ip(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR"))


def admit(request: HttpRequest, runtime: GatewayRuntime, match: Match) -> Admission:
    """Authenticate, then apply the rate limits (401, 429 or 503 raised)."""
    try:
        identity = runtime.authenticator.authenticate(lower_headers(request))
        if identity.scheme == "session":
            require_csrf(request)  # a session cookie rides along on cross-site requests: unsafe methods need the token
    except (Unauthenticated, CsrfFailed) as refused:
        verdict = _limit(request, runtime, match.endpoint, ANONYMOUS)
        raise verdict.error or Admission(ANONYMOUS, verdict.headers).add_headers(refused) from None
    verdict = _limit(request, runtime, match.endpoint, identity)
    if verdict.error is not None:
        raise verdict.error
    return Admission(identity, verdict.headers)


def _limit(request: HttpRequest, runtime: GatewayRuntime, endpoint: Endpoint, identity: Identity) -> RateVerdict:
    if _edge is None:
        return RateVerdict(enforced=False)
    subject = RateSubject(endpoint.name, client_ip(request, _edge.client_ips), identity.user_id)
    return _edge.limiter.check(
        layer_rules=runtime.plan.layer.rate_limits, endpoint_rules=endpoint.rate_limits, subject=subject
    )


def respond(
    *,
    runtime: GatewayRuntime,
    endpoint: Endpoint,
    context: RequestContext,
    identity: Identity,
    render: Callable[[Any], HttpResponse],
    render_cached: Callable[[Any], HttpResponse],
) -> HttpResponse:
    """Run the plan, through the cache when the endpoint is cacheable."""

    def run() -> Any:
        return runtime.executor.run(endpoint, context)

    policy = endpoint.cache
    if _edge is None or not is_cacheable(policy, endpoint_method=endpoint.method, request_method=context.method):
        return render(run())
    if policy.scope == "user" and identity.user_id is None:
        return render(run())  # without client auth a user entry would be everyone's (`gateway check` refuses it)
    key = cache_key(
        namespace=runtime.plan.version,
        endpoint=endpoint.name,
        path_params=context.path_params,
        query=context.query,
        scope=policy.scope,
        user_id=identity.user_id,
    )
    budget_s = endpoint.timeout_ms / 1000 + FILL_MARGIN_S
    client_auth = runtime.plan.layer.auth.type != "none"
    request = CacheRequest(key, endpoint.name, policy, budget_s, client_auth=client_auth)
    answer = _edge.cache.fetch(request, run, _storable(context))
    response = render_cached(answer.body) if answer.hit else render(answer.result)
    for name, value in answer.headers.items():
        response[name] = value
    return response


def _storable(context: RequestContext) -> Callable[[Any], Storable | None]:
    """Only a full success is stored; its tags render over the response context."""

    def classify(result: Any) -> Storable | None:
        if isinstance(result, Failure) or getattr(result, "partial", True) or getattr(result, "stale_services", ()):
            return None  # a stale stand-in is not cached for a whole TTL
        tag_context: dict[str, Any] = {"response": result.body}
        tag_context.update(getattr(result, "context", None) or {})  # the calls' results, when the run exposes them
        tag_context.update(context.template_context())
        return Storable(result.body, tag_context)

    return classify
