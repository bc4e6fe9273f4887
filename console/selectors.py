"""What the console pages show, read in one call per page (one selector, one template)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from console.choices import STATE_BADGES, STATUS_BADGES, ActionOutcome
from console.models import BreakerAuditEntry
from orchestration.observability.recent_stats import TransitionEntry
from orchestration.observability.service_health import ServiceHealth
from orchestration.plan import Plan
from registry.blast_radius import Dependent, impact_sentence, service_dependents

HISTORY_LIMIT = 20


@dataclass(frozen=True, slots=True)
class ServiceRow:
    """One service as the board shows it: numbers already turned into words."""

    health: ServiceHealth
    state_label: str
    state_tone: str
    status_label: str
    status_tone: str
    sentence: str
    failures: str
    opened_at: dt.datetime | None
    half_open_in: str
    error_rate: str
    p95: str
    declared_latency: str
    sla: str
    measured_success: str
    last_success: dt.datetime | None
    last_failure: dt.datetime | None
    impact: str = ""  # while its breaker is not closed: the endpoints it fails or degrades

    @property
    def name(self) -> str:
        return self.health.name


@dataclass(frozen=True, slots=True)
class Board:
    status: str
    status_label: str
    status_tone: str
    rows: tuple[ServiceRow, ...]
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: dt.datetime
    text: str
    kind: str  # "transition" | "action"
    tone: str


@dataclass(frozen=True, slots=True)
class ServicePage:
    row: ServiceRow
    history: tuple[HistoryEntry, ...]
    at: dt.datetime
    dependents: tuple[Dependent, ...] = ()  # blast radius: the calls to this service


def _when(epoch_s: float | None) -> dt.datetime | None:
    return None if epoch_s is None else dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC)


def _row(health: ServiceHealth) -> ServiceRow:
    snap, stats, service = health.breaker, health.stats, health.service
    state_label, state_tone = STATE_BADGES.get(health.breaker_state, (health.breaker_state, "warn"))
    status_label, status_tone = STATUS_BADGES[health.status]
    until = snap.seconds_until_half_open
    return ServiceRow(
        health=health,
        state_label=("Forced " + state_label.lower()) if snap.forced else state_label,
        state_tone=state_tone if not (snap.forced and state_tone == "ok") else "warn",
        status_label=status_label,
        status_tone=status_tone,
        sentence=health.sentence(),
        failures=f"{snap.failures_in_window} / {service.breaker.failure_threshold} in {service.breaker.window_s:g} s",
        opened_at=_when(snap.opened_at),
        half_open_in="—" if until is None else f"{round(until)} s",
        error_rate="no calls" if stats.error_rate is None else f"{stats.error_rate:.1%} of {stats.attempts}",
        p95="—" if stats.p95_s is None else f"{stats.p95_s * 1000:.0f} ms",
        declared_latency="—" if service.avg_latency_ms is None else f"{service.avg_latency_ms} ms",
        sla="—" if service.sla is None else f"{service.sla:g} %",
        measured_success="—" if stats.error_rate is None else f"{(1 - stats.error_rate) * 100:.2f} %",
        last_success=_when(stats.last_success_at),
        last_failure=_when(stats.last_failure_at),
    )


def breaker_board_get() -> Board:
    from gateway_project.observability import downstream_view

    view = downstream_view()
    label, tone = STATUS_BADGES[view.status]
    rows = tuple(_with_impact(view.plan, _row(h)) for h in view.services)
    return Board(view.status, label, tone, rows, _when(view.at) or dt.datetime.now())


def _with_impact(plan: Plan, row: ServiceRow) -> ServiceRow:
    """An open (or half-open, or forced) breaker names the endpoints it is failing or degrading."""
    if row.health.breaker_state == "closed":
        return row
    return dataclasses.replace(row, impact=impact_sentence(plan, row.name))


def service_page_get(*, name: str) -> ServicePage | None:
    from gateway_project.observability import downstream_view, recent_stats

    view = downstream_view()
    health = view.get(name)
    if health is None:
        return None
    transitions = recent_stats().sink.transitions(name, HISTORY_LIMIT)
    actions = BreakerAuditEntry.objects.filter(service=name)[:HISTORY_LIMIT]
    history = sorted(
        [*(_transition_entry(t) for t in transitions), *(_action_entry(a) for a in actions)],
        key=lambda entry: entry.at,
        reverse=True,
    )
    row = _with_impact(view.plan, _row(health))
    at = _when(view.at) or dt.datetime.now()
    return ServicePage(row, tuple(history[:HISTORY_LIMIT]), at, service_dependents(view.plan, name))


def service_dependents_get(*, name: str) -> tuple[Dependent, ...] | None:
    """Blast radius of a service of the served plan (None: no such service); for the admin API."""
    from gateway_project.observability import current_runtime

    plan = current_runtime().plan
    return service_dependents(plan, name) if name in plan.services else None


def _transition_entry(entry: TransitionEntry) -> HistoryEntry:
    to_label, tone = STATE_BADGES.get(entry.to_state, (entry.to_state, "warn"))
    from_label = STATE_BADGES.get(entry.from_state, (entry.from_state, ""))[0]
    text = f"Breaker {from_label.lower()} → {to_label.lower()}: {entry.reason}"
    return HistoryEntry(_when(entry.at) or dt.datetime.now(), text, "transition", tone)


def _action_entry(entry: BreakerAuditEntry) -> HistoryEntry:
    text = f"{entry.username}: {entry.get_action_display()} — “{entry.reason}”"
    if entry.outcome != ActionOutcome.DONE:
        text += f" ({entry.get_outcome_display().lower()})"
    return HistoryEntry(entry.created_at, text, "action", "info")


def audit_entries_list(*, service: str | None = None, limit: int = 50) -> list[BreakerAuditEntry]:
    entries = BreakerAuditEntry.objects.all()
    if service is not None:
        entries = entries.filter(service=service)
    return list(entries[:limit])
