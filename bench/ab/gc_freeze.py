"""A/B for bench/micro.py: the worker's start-up objects frozen out of the collector's reach
(B, ``gateway_project.heap``, as gunicorn's post_worker_init does) or not (A). Run it at the
demo latencies with many clients (``--latency-scale 1 -c 100``): what a full collection costs
depends on how many objects it walks while requests are in flight."""

from __future__ import annotations

import gc

from gateway_project.heap import freeze_startup_objects


def toggle(on: bool) -> None:
    if on:
        freeze_startup_objects()
    else:
        gc.unfreeze()
