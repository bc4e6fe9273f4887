"""The admin REST API under ``/api/admin/v1/`` (contract section 5): the registry's
views, the console's breaker views and the OpenAPI schema of exactly these routes."""

from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView

from console.api import BreakerView
from registry.api.base import AdminApiView

PREFIX = "api/admin/v1/"

api_patterns: list[URLPattern | URLResolver] = [
    path("", include("registry.api.urls")),
    path("services/<slug:name>/breaker", BreakerView.as_view(), name="admin-api-breaker"),
]


class SchemaView(SpectacularAPIView):
    """The OpenAPI 3 document of this API; behind the API's own auth and throttles."""

    authentication_classes = AdminApiView.authentication_classes
    permission_classes = AdminApiView.permission_classes
    throttle_classes = AdminApiView.throttle_classes
    urlconf = "gateway_project.admin_api_urls"
    get_exception_handler = AdminApiView.get_exception_handler


urlpatterns = [
    path(PREFIX, include(api_patterns)),
    path(PREFIX + "schema", SchemaView.as_view(), name="admin-api-schema"),
]
