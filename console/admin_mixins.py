"""A breaker-state column for the registry's Service admin list.

``console/admin.py`` re-registers the registry's ServiceAdmin with this column
(the console depends on the registry, never the reverse). The state comes from the shared
breaker store, read once per service row (cheap: a snapshot, no database).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from console.choices import STATE_BADGES

_COLOURS = {"ok": "#1a7f37", "warn": "#9a6700", "bad": "#cf222e"}


def breaker_state_of(service_name: str) -> str | None:
    from gateway_project.observability import downstream_view

    try:
        health = downstream_view().get(service_name)
    except Exception:  # noqa: BLE001 - the admin list must render even when the plan cannot load
        return None
    return None if health is None else health.breaker_state


class BreakerStateColumnMixin:
    @admin.display(description="breaker")
    def breaker_state(self, obj: Any) -> str:
        state = breaker_state_of(obj.name)
        if state is None:
            return "—"
        label, tone = STATE_BADGES.get(state, (state, "warn"))
        url = reverse("console:service", args=[obj.name])
        return format_html('<a href="{}" style="color:{};font-weight:bold">{}</a>', url, _COLOURS[tone], label)
