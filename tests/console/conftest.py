"""In-process console fixtures: the ops configuration served, breakers closed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command

from tests.e2e.ops_config import ops_config
from tests.support.fake_downstream import fake_downstream  # noqa: F401 - shared fixture


@pytest.fixture
def served(tmp_path, fake_downstream) -> Any:  # noqa: F811
    """The ops configuration against fake services (cart ok, shipping failing); returns the runtime."""
    from gateway_project import wiring
    from gateway_project.observability import recent_stats

    cart = fake_downstream({"*": (200, {"items": [1]})})
    shipping = fake_downstream({"*": (500, {"error": "down"})})
    path = tmp_path / "gateway.yaml"
    path.write_text(ops_config(cart=cart.url, shipping=shipping.url), encoding="utf-8")
    call_command("gateway", "import", str(path))
    wiring.runtime_holder().invalidate()
    runtime = wiring.runtime_holder().current()
    redis = wiring.redis_client()
    recent_stats().flush()  # attempts of earlier in-process tests, then forget them
    for pattern in ("gateway:stats:*", "gateway:transitions:*"):  # recent numbers of earlier tests
        for key in redis.scan_iter(pattern) if redis is not None else ():
            redis.delete(key)
    for name in runtime.plan.services:
        runtime.pool.breaker(name).reset()
    return runtime


@pytest.fixture
def make_user(django_user_model) -> Callable[..., Any]:
    def make(username: str, *, staff: bool = True, operate: bool = False) -> Any:
        user = django_user_model.objects.create_user(username=username, password="pw-not-used", is_staff=staff)
        if operate:
            user.user_permissions.add(Permission.objects.get(codename="operate_breakers"))
        return user

    return make
