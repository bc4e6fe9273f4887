"""A/B for bench/micro.py --ab: B = django-prometheus's two middlewares as
``orchestration.web.ops_metrics`` serves them since round 8 (the settings' list),
A = as before (django-prometheus's own before-middleware through MiddlewareMixin; the
after-middleware's hooks upstream's, with only its label children remembered)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _chain import handler_replacing  # bench/ab/_chain.py

import gateway_project.wsgi as wsgi

_b = wsgi.application
_OURS = "orchestration.web.ops_metrics."
_a = handler_replacing(
    {
        _OURS + "PrometheusBeforeMiddleware": "django_prometheus.middleware.PrometheusBeforeMiddleware",
        _OURS + "PrometheusAfterMiddleware": "_prometheus_before_round8.AfterRound7",
    }
)


def toggle(on: bool) -> None:
    wsgi.application = _b if on else _a
