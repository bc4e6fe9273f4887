"""Metrics, traces and logs of the gateway, free of Django.

``metrics`` owns every Prometheus series the gateway writes, ``tracing`` the
OpenTelemetry setup and the per-attempt spans, ``access_log`` the request-scoped
log fields (request id, trace id) and the one access line per request. The
Django-side glue (the /metrics view, middleware, app start-up) lives in
``orchestration.web.ops_*`` and ``gateway_project.observability``.
"""
