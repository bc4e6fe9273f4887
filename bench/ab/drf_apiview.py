"""A/B for bench/micro.py --ab: B = the aggregate route served by a DRF ``APIView``
(no authentication, permission, throttle or parser classes of DRF's: the gateway's own
edge does that work), A = the plain Django view. For docs/adr/0006."""

from typing import Any

from django.urls import get_resolver
from django.views.decorators.csrf import csrf_exempt
from rest_framework.views import APIView

from orchestration.web import aggregate


class AggregateAPIView(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []

    def post(self, request: Any, path: str = "") -> Any:
        return aggregate.aggregate(request._request, path)

    get = put = patch = delete = post


_pattern = next(p for p in get_resolver().url_patterns if getattr(p, "name", None) == "aggregate")
_plain = _pattern.callback
_drf = csrf_exempt(AggregateAPIView.as_view())


def toggle(on: bool) -> None:
    _pattern.callback = _drf if on else _plain
