from django.urls import path

from console import views, views_spec

app_name = "console"

urlpatterns = [
    path("", views.board, name="board"),
    path("services/<slug:name>/", views.service, name="service"),
    path("services/<slug:name>/actions", views.service_action, name="service-action"),
    path("spec/", views_spec.spec, name="spec"),
    path("explain/", views_spec.explain, name="explain"),
]
