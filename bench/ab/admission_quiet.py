"""A/B for bench/micro.py --ab (use demo latencies and few clients, e.g. ``--latency-scale 1
-c 10``): B = the adaptive admission limit steps every ``quiet_period_s`` (1 s) while the
limit is far from binding, A = every ``period_s`` (0.1 s) always, as before round 10."""

import dataclasses

from gateway_project import wiring


def toggle(on: bool) -> None:
    for adaptive in wiring._adaptive_limits:
        quiet = 1.0 if on else adaptive.policy.period_s
        adaptive.policy = dataclasses.replace(adaptive.policy, quiet_period_s=quiet)
