"""The /console/spec/ page: the specification of the served plan, with what only a
live system knows beside what is declared (last 5 minutes, every gateway process)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from orchestration.observability.recent_stats import ServiceStats, endpoint_key
from registry.spec import Spec, spec_build


@dataclass(frozen=True, slots=True)
class Measured:
    """One service's measured figures, as words."""

    p50: str
    p95: str
    success: str
    attempts: int


@dataclass(frozen=True, slots=True)
class SpecPage:
    spec: Spec
    registry_rows: tuple[tuple[tuple[str, ...], Measured], ...]  # each registry row with its measured figures
    at: dt.datetime
    endpoint_measured: tuple[Measured, ...] = ()  # each endpoint's answers, in spec.endpoints' order


def _ms(value_s: float | None) -> str:
    return "—" if value_s is None else f"{value_s * 1000:.0f}ms"


def _measured(stats: ServiceStats) -> Measured:
    success = "no calls" if stats.error_rate is None else f"{(1 - stats.error_rate) * 100:.2f}%"
    return Measured(_ms(stats.p50_s), _ms(stats.p95_s), success, stats.attempts)


def _endpoint_measured(stats: ServiceStats) -> Measured:
    success = "no requests" if stats.error_rate is None else f"{(1 - stats.error_rate) * 100:.2f}%"
    return Measured(_ms(stats.p50_s), _ms(stats.p95_s), success, stats.attempts)


def spec_page_get() -> SpecPage:
    from gateway_project.observability import downstream_view, recent_stats

    view = downstream_view()
    spec = spec_build(view.plan, date=dt.date.today().isoformat())
    # The registry table's rows are in the plan's service order; pair them by position.
    by_name = {health.name: _measured(health.stats) for health in view.services}
    rows = tuple((row, by_name[name]) for row, name in zip(spec.registry.rows, view.plan.services, strict=True))
    # Each endpoint's answers (5xx: not a success), recorded when its requests finished.
    keys = [endpoint_key(e.endpoint.name) for e in spec.endpoints]
    answered = recent_stats().sink.read(keys, view.at)  # flushed by downstream_view just now
    endpoints = tuple(_endpoint_measured(answered[key]) for key in keys)
    return SpecPage(spec, rows, dt.datetime.fromtimestamp(view.at, tz=dt.UTC), endpoints)
