"""Every response the gateway gives carries X-Request-ID, not only aggregate ones."""

import pytest
from django.test import Client


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/health/downstream", "/metrics", "/console/", "/admin/"])
def test_fixed_paths_carry_the_request_id(path: str) -> None:
    response = Client().get(path, headers={"X-Request-ID": "ops-probe-7"})
    assert response.status_code in {200, 302, 503}
    assert response["X-Request-ID"] == "ops-probe-7"
    assert len(Client().get(path)["X-Request-ID"]) == 32  # none sent: a new one
