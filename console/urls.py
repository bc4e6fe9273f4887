from django.urls import path

from console import views

app_name = "console"

urlpatterns = [
    path("", views.board, name="board"),
    path("services/<slug:name>/", views.service, name="service"),
    path("services/<slug:name>/actions", views.service_action, name="service-action"),
]
