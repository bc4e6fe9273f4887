"""``X-Forwarded-Proto`` believed only from our own proxies (``GATEWAY_TLS_PROXY=on``).

Django's ``SECURE_PROXY_SSL_HEADER`` trusts the header from any peer: a client
talking plain HTTP straight to the gateway could claim HTTPS. This middleware,
first in the chain, drops the header unless the socket peer is one of
``GATEWAY_TRUSTED_PROXIES`` (the same list, and the same matching, as for
``X-Forwarded-For``), so ``request.is_secure()`` means what it says. gunicorn's
own reading of the header is off (``secure_scheme_headers`` in gunicorn.conf.py).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from orchestration.edge.client_ip import ClientIpResolver, parse_ip

HEADER = "HTTP_X_FORWARDED_PROTO"


class ForwardedProtoMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._proxies = ClientIpResolver(settings.GATEWAY["TRUSTED_PROXIES"])

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if HEADER in request.META and not self._from_proxy(request.META.get("REMOTE_ADDR", "")):
            del request.META[HEADER]
        return self.get_response(request)

    def _from_proxy(self, peer: str) -> bool:
        address = parse_ip(peer)
        return address is not None and self._proxies.is_trusted(address)
