"""/health/downstream: status for everyone, details for staff or the health token, never secrets."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token(settings) -> str:
    settings.GATEWAY = {**settings.GATEWAY, "HEALTH_TOKEN": "health-token-123"}
    return "health-token-123"


def test_anonymous_gets_status_only(client, served, token) -> None:
    response = client.get("/health/downstream")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    wrong = client.get("/health/downstream", HTTP_X_HEALTH_TOKEN="guess")
    assert wrong.json() == {"status": "ok"}


def test_token_gets_every_service_with_breaker_state(client, served, token) -> None:
    served.pool.breaker("shipping").force_open()

    response = client.get("/health/downstream", HTTP_X_HEALTH_TOKEN=token)

    body = response.json()
    assert response.status_code == 200 and body["status"] == "degraded"
    assert set(body["services"]) == {"cart", "shipping"}
    shipping = body["services"]["shipping"]
    assert (shipping["status"], shipping["breaker"], shipping["forced"]) == ("down", "open", True)
    assert body["services"]["cart"]["breaker"] == "closed"
    for key in ("failures_in_window", "seconds_until_half_open", "last_success_at", "last_failure_at"):
        assert key in shipping
    assert "error_rate_5m" in shipping and "p95_latency_ms_5m" in shipping
    text = json.dumps(body)
    assert "127.0.0.1" not in text and token not in text  # no URLs, no secrets


def test_staff_session_gets_details_and_all_down_is_503(client, served, django_user_model) -> None:
    for name in ("cart", "shipping"):
        served.pool.breaker(name).force_open()
    client.force_login(django_user_model.objects.create_user("staff", is_staff=True))

    response = client.get("/health/downstream")

    assert response.status_code == 503
    assert response.json()["status"] == "down" and response.json()["services"]["cart"]["breaker"] == "open"
