"""django-prometheus's two middlewares as settings listed them before round 8 (the
original before-middleware; the after-middleware with remembered label children only)."""

from django_prometheus import middleware as original

from orchestration.web import ops_metrics


class AfterRound7(ops_metrics.PrometheusAfterMiddleware):
    process_request = original.PrometheusAfterMiddleware.process_request
    process_response = original.PrometheusAfterMiddleware.process_response
