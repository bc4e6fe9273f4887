"""One downstream service's health, from its breaker and its recent numbers.

The same judgement feeds /health/downstream and the console's breaker board,
so a load balancer, a dashboard and a person at 3 a.m. never disagree. Pure:
the caller brings the plan's service, a breaker snapshot and recent stats.

    down      breaker open (calls are skipped)
    degraded  breaker half-open, forced closed, or error rate above 5 % (5 min)
    ok        otherwise
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from orchestration.observability.recent_stats import ServiceStats
from orchestration.plan import Service
from orchestration.resilience.breaker import BreakerSnapshot

Status = Literal["ok", "degraded", "down"]
ERROR_RATE_DEGRADED = 0.05


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    service: Service
    breaker: BreakerSnapshot
    stats: ServiceStats
    status: Status

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def breaker_state(self) -> str:
        return str(self.breaker.state)

    def sentence(self) -> str:
        """The state in words, for people: what happens to calls and what comes next."""
        name, snap = self.name, self.breaker
        if snap.state == "open" and snap.forced:
            return f"Forced open: calls to {name} are skipped until someone resets the breaker"
        if snap.state == "open":
            wait = "now" if not snap.seconds_until_half_open else f"in {round(snap.seconds_until_half_open)} s"
            return f"Open: calls to {name} are skipped; next probe {wait}"
        if snap.state == "half_open":
            probes = self.service.breaker.half_open_probes
            return (
                f"Half-open: probing {name} with {probes} trial calls "
                f"({snap.probes_issued} sent, {snap.probes_succeeded} succeeded)"
            )
        if snap.forced:
            return f"Forced closed: calls to {name} always go through; failures are not counted"
        return f"Closed: calls to {name} go through normally"


def judge(service: Service, breaker: BreakerSnapshot, stats: ServiceStats) -> ServiceHealth:
    state = str(breaker.state)
    if state == "open":
        status: Status = "down"
    elif state == "half_open" or breaker.forced or _erroring(stats):
        status = "degraded"
    else:
        status = "ok"
    return ServiceHealth(service, breaker, stats, status)


def _erroring(stats: ServiceStats) -> bool:
    return stats.error_rate is not None and stats.error_rate > ERROR_RATE_DEGRADED


def overall(healths: Sequence[ServiceHealth]) -> Status:
    """down when every service is down; degraded when any is not ok; else ok."""
    if not healths:
        return "ok"
    if all(h.status == "down" for h in healths):
        return "down"
    return "ok" if all(h.status == "ok" for h in healths) else "degraded"


def details(health: ServiceHealth, *, now: float) -> dict[str, object]:
    """The JSON details of one service (no URLs with credentials, no auth settings)."""
    snap, stats = health.breaker, health.stats
    return {
        "status": health.status,
        "breaker": health.breaker_state,
        "forced": snap.forced,
        "failures_in_window": snap.failures_in_window,
        "failure_threshold": health.service.breaker.failure_threshold,
        "window_s": health.service.breaker.window_s,
        "opened_at": snap.opened_at,
        "seconds_until_half_open": _round(snap.seconds_until_half_open),
        "last_success_at": stats.last_success_at,
        "last_failure_at": stats.last_failure_at,
        "seconds_since_last_success": _round(None if stats.last_success_at is None else now - stats.last_success_at),
        "seconds_since_last_failure": _round(None if stats.last_failure_at is None else now - stats.last_failure_at),
        "attempts_5m": stats.attempts,
        "error_rate_5m": _round(stats.error_rate, 4),
        "p95_latency_ms_5m": _round(None if stats.p95_s is None else stats.p95_s * 1000.0),
        "declared_latency_ms": health.service.avg_latency_ms,
        "declared_sla": health.service.sla,
        "message": health.sentence(),
    }


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
