"""``/api/admin/v1/`` routes of the registry's half of the admin API (the console adds
the breaker routes; ``gateway_project.admin_api_urls`` puts both under the prefix)."""

from django.urls import path

from registry.api import views

urlpatterns = [
    path("config", views.ConfigView.as_view(), name="admin-api-config"),
    path("config/diff", views.ConfigDiffView.as_view(), name="admin-api-config-diff"),
    path("versions", views.VersionListView.as_view(), name="admin-api-versions"),
    path("versions/<int:number>", views.VersionDetailView.as_view(), name="admin-api-version"),
    path("versions/<int:number>/rollback", views.VersionRollbackView.as_view(), name="admin-api-rollback"),
    path("services/<slug:name>/dependents", views.ServiceDependentsView.as_view(), name="admin-api-dependents"),
]
