"""Fixed paths of the contract (section 3); aggregate endpoints are routed last."""

from django.contrib import admin
from django.urls import include, path, re_path

from gateway_project import wiring
from orchestration.web import aggregate, health, health_downstream, ops_metrics, webhooks

wiring.install()

# Django's own 400/404/500 answers: the envelope on API paths (gateway_project.error_views).
handler400 = "gateway_project.error_views.bad_request"
handler404 = "gateway_project.error_views.page_not_found"
handler500 = "gateway_project.error_views.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("health/downstream", health_downstream.health_downstream, name="health-downstream"),
    path("metrics", ops_metrics.metrics_view, name="metrics"),
    path("console/", include("console.urls")),
    path("", include("gateway_project.admin_api_urls")),  # /api/admin/v1/ (contract section 5)
    path("openapi.json", aggregate.openapi, name="openapi"),
    path("webhooks/invalidate", webhooks.invalidate, name="webhooks-invalidate"),
    re_path(r"^(?P<path>[\s\S]*)$", aggregate.aggregate, name="aggregate"),  # any path, newlines too: a 404 envelope
]
