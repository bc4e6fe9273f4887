"""The cyclic garbage collector, set for a long-running worker holding many requests at once.

A worker starts with ~170,000 objects the collector tracks (Django, the modules, the compiled
plan, the clients) that live as long as the process. Every full (generation-2) collection
walked all of them: measured in a worker at 100 clients (bench/README.md, round 10), one full
collection every ~1,000 requests, each stopping every greenlet of the worker for 110 to 190 ms,
and the collector took ~0.18 ms of CPU a request in all. ``gc.freeze()`` once the worker has
built its runtime moves them to the permanent generation, which collections skip: full
collections then walk only what requests made (15 to 50 ms).

Then the young generation's threshold is raised from 700 to ``YOUNG_THRESHOLD``. A young
collection comes when the count of container objects alive has grown by the threshold since the
last one (an object freed by reference counting takes one off), and the request path makes no
reference cycles (``spawn._QueueResults``): what a request allocates is freed when it ends, so
at 700 the collector ran on the swing of the objects of the requests in flight — one young
collection every ~8 requests at 100 clients, each promoting live request objects to be walked
again by the older generations (~0.05 ms a request in all; 594 young, 53 middle and 4 full
collections in 6,000 requests). At 10,000: 4 young collections in 6,000 requests, ~2 ms each;
whatever does make cycles (an error path, the admin) is still collected, every 10,000 objects.

Frozen objects are never collected as cyclic garbage: what the start built and a later
configuration change drops (the first plan) stays in memory if it is part of a cycle — once,
bounded by the size of one plan, as later plans are never frozen.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def freeze_startup_objects() -> None:
    """Collect what the start left behind, exempt everything alive from later collections, and
    collect the young generation only when the objects alive have grown by ``YOUNG_THRESHOLD``."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
