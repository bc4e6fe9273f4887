"""The engine's observer, turned into metrics, spans and log lines.

One object plugs into ``orchestration.observer.Observer``: each finished
downstream attempt becomes a histogram observation, an outcome count and a
span; each breaker transition a counter increment and a structured log line
(service, from, to, reason) that on-call can grep and alert on.
"""

from __future__ import annotations

import logging

from orchestration.observability import metrics, tracing
from orchestration.observability.recent_stats import RecentStats
from orchestration.observer import AttemptObservation, BreakerTransition, ResilienceDecision, SchemaViolation

breaker_logger = logging.getLogger("gateway.breaker")
store_logger = logging.getLogger("gateway.store")
decision_logger = logging.getLogger("gateway.resilience")
contract_logger = logging.getLogger("gateway.contract")


class TelemetryObserver:
    """Metrics + tracing + logs for what the engine reports. Quick and never raising:
    it runs on request greenlets, and telemetry must not fail a request."""

    def __init__(self, recent: RecentStats | None = None) -> None:
        self.recent = recent

    def on_attempt(self, observation: AttemptObservation) -> None:
        outcome = metrics.outcome_label(str(observation.kind), observation.status)
        try:
            metrics.observe_attempt(
                service=observation.service,
                endpoint=observation.endpoint,
                call=observation.call_id,
                outcome=outcome,
                duration_s=observation.duration_s,
            )
            tracing.record_attempt_span(
                endpoint=observation.endpoint,
                service=observation.service,
                call_id=observation.call_id,
                attempt=observation.attempt,
                outcome=outcome,
                duration_s=observation.duration_s,
                status=observation.status,
            )
            if self.recent is not None:
                self.recent.record(service=observation.service, outcome=outcome, duration_s=observation.duration_s)
        except Exception:  # telemetry never breaks serving
            logging.getLogger(__name__).warning("telemetry: could not record an attempt", exc_info=True)

    def on_breaker_transition(self, transition: BreakerTransition) -> None:
        if transition.from_state == transition.to_state:  # e.g. a reset of a closed breaker: no change to count
            breaker_logger.info("breaker %s: %s (%s)", transition.service, transition.to_state, transition.reason)
            return
        metrics.observe_breaker_transition(
            service=transition.service, from_state=transition.from_state, to_state=transition.to_state
        )
        if self.recent is not None:
            self.recent.record_transition(transition)
        level = logging.WARNING if transition.to_state == "open" else logging.INFO
        breaker_logger.log(
            level,
            "breaker %s: %s -> %s (%s)",
            transition.service,
            transition.from_state,
            transition.to_state,
            transition.reason,
            extra={
                "event": "breaker_transition",
                "service": transition.service,
                "from_state": transition.from_state,
                "to_state": transition.to_state,
                "reason": transition.reason,
            },
        )

    def on_rate_limited(self, scope: str) -> None:
        """The edge refused a request (``orchestration.edge.edge_metrics.EdgeMetrics``)."""
        metrics.observe_rate_limit_rejection(scope=scope)

    def on_cache_lookup(self, endpoint: str, hit: bool) -> None:
        metrics.observe_cache_lookup(endpoint=endpoint, hit=hit)

    def on_decision(self, decision: ResilienceDecision) -> None:
        metrics.observe_decision(service=decision.service, endpoint=decision.endpoint, decision=decision.decision)
        decision_logger.info(
            "%s %s/%s: %s",
            decision.decision,
            decision.endpoint,
            decision.call_id,
            decision.detail,
            extra={"event": "resilience_decision", "service": decision.service, "decision": decision.decision},
        )

    def on_schema_violation(self, violation: SchemaViolation) -> None:
        metrics.observe_schema_violation(endpoint=violation.endpoint, field=violation.field, failed=violation.failed)
        contract_logger.warning(
            "response of %s breaks its response_schema at %s: %s%s",
            violation.endpoint,
            violation.field,
            violation.message,
            " (answered 502 CONTRACT_VIOLATION)" if violation.failed else "",
            extra={"event": "schema_violation", "endpoint": violation.endpoint, "field": violation.field},
        )

    def on_store_error(self, store: str, error: Exception) -> None:
        metrics.observe_store_error(store=store)
        # The error's type only: a Redis error message can echo a URL with a password.
        store_logger.warning(
            "%s store unreachable, falling back (%s)",
            store,
            type(error).__name__,
            extra={"event": "store_error", "store": store, "error_type": type(error).__name__},
        )
