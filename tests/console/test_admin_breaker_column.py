"""The registry's service list in the admin shows each breaker's state."""

from typing import Any

import pytest
from django.test import Client


@pytest.mark.django_db
def test_service_list_shows_breaker_state_with_a_link_to_the_console(served: Any, django_user_model: Any) -> None:
    runtime = served
    runtime.pool.breaker("shipping").force_open()
    admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-not-used")
    client = Client()
    client.force_login(admin_user)
    html = client.get("/admin/registry/service/").content.decode()
    assert "column-breaker_state" in html
    assert '<a href="/console/services/shipping/"' in html
    shipping_row = html[html.index('href="/console/services/shipping/"') :][:200]
    assert ">Open</a>" in shipping_row
    cart_row = html[html.index('href="/console/services/cart/"') :][:200]
    assert ">Closed</a>" in cart_row
