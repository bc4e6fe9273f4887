"""Retry: which outcomes are tried again, how long to wait, and the loop.

Only the kinds a service lists in ``retry_on`` are retried (``5xx``,
``timeout``, ``connect_error``, ``429``), only for methods that are safe to
repeat (GET/HEAD/PUT/DELETE/OPTIONS, or a call marked ``idempotent``), and never
past the endpoint's deadline: no attempt and no backoff sleep starts that would
end after it. Each attempt gets ``min(per-attempt timeout, time left)``.
A 429's or 503's Retry-After, when longer than the backoff step, is honoured;
when that wait would pass the deadline, no retry is made. With a retry budget
(``retry_budget``) each retry must be granted by it, or it is not made. Every
such choice is told to ``on_decision`` (metrics, explain).
"""

from __future__ import annotations

from collections.abc import Callable

from orchestration.clock import Deadline
from orchestration.outcome import Outcome, OutcomeKind
from orchestration.plan import RetryOn, RetryPolicy

Attempt = Callable[[float], Outcome]  # timeout_s -> outcome
Sleeper = Callable[[float], None]
Random = Callable[[], float]  # uniform in [0, 1)
AttemptListener = Callable[[int, Outcome], None]  # attempt number (1-based), outcome
DecisionListener = Callable[[str, str], None]  # decision (observer.DECISIONS), detail
RetryGrant = Callable[[], bool]  # may one more retry be made? (a retry budget spends on True)

DEADLINE_PASSED = Outcome(OutcomeKind.TIMEOUT, detail="endpoint deadline passed before the attempt")


def retry_class(outcome: Outcome) -> RetryOn | None:
    """The ``retry_on`` name an outcome falls under, if any."""
    if outcome.kind is OutcomeKind.TIMEOUT:
        return "timeout"
    if outcome.kind is OutcomeKind.CONNECT_ERROR:
        return "connect_error"
    if outcome.kind is OutcomeKind.BAD_STATUS and outcome.status == 429:
        return "429"
    if outcome.kind is OutcomeKind.BAD_STATUS and outcome.status is not None and outcome.status >= 500:
        return "5xx"
    return None


def should_retry(policy: RetryPolicy, retryable_method: bool, outcome: Outcome) -> bool:
    kind = retry_class(outcome)
    return retryable_method and kind is not None and kind in policy.retry_on


def backoff_s(policy: RetryPolicy, retry_number: int, random: Random) -> float:
    """Delay before retry ``retry_number`` (1-based); full jitter draws within the step."""
    base_s = policy.base_ms / 1000
    if policy.backoff == "none":
        return 0.0
    step = base_s if policy.backoff == "fixed" else base_s * 2 ** (retry_number - 1)
    return random() * step if policy.jitter else step


def run_with_retry(
    attempt: Attempt,
    *,
    policy: RetryPolicy,
    retryable_method: bool,
    attempt_timeout_s: float,
    deadline: Deadline,
    sleep: Sleeper,
    random: Random,
    cancelled: Callable[[], bool] = lambda: False,
    listener: AttemptListener | None = None,
    grant: RetryGrant | None = None,
    on_decision: DecisionListener | None = None,
) -> Outcome:
    """Run ``attempt`` until it succeeds, may not be retried, or time is up."""
    outcome = DEADLINE_PASSED
    for number in range(1, policy.max_retries + 2):
        remaining = deadline.remaining()
        if remaining <= 0 or cancelled():
            return outcome
        outcome = attempt(min(attempt_timeout_s, remaining))
        if listener is not None:
            listener(number, outcome)
        if number > policy.max_retries or not should_retry(policy, retryable_method, outcome):
            return outcome
        delay = _delay_s(policy, number, random, outcome, deadline, on_decision)
        if delay is None or cancelled():
            return outcome
        if grant is not None and not grant():
            if on_decision is not None:
                on_decision("retry_over_budget", f"retry {number} not made: the retry budget is spent")
            return outcome
        sleep(delay)
    return outcome


def _delay_s(
    policy: RetryPolicy,
    number: int,
    random: Random,
    outcome: Outcome,
    deadline: Deadline,
    on_decision: DecisionListener | None,
) -> float | None:
    """The wait before retry ``number``, or None when it would end past the deadline."""
    delay = backoff_s(policy, number, random)
    honoured = outcome.retry_after_s is not None and outcome.retry_after_s > delay
    if outcome.retry_after_s is not None:
        delay = max(delay, outcome.retry_after_s)
    if delay >= deadline.remaining():
        if honoured and on_decision is not None:
            on_decision("retry_after_past_deadline", f"Retry-After {outcome.retry_after_s:g}s passes the deadline")
        return None
    if honoured and on_decision is not None:
        on_decision("retry_after_waited", f"waited Retry-After {outcome.retry_after_s:g}s before retry {number}")
    return delay
