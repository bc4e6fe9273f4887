"""Fixed paths of the contract (section 3); aggregate endpoints are routed last."""

from django.contrib import admin
from django.urls import path

from orchestration.web import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]
