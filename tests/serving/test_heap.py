"""The worker's start-up objects leave the collector's reach; what requests make does not
(``gateway_project.heap``, called by gunicorn's ``post_worker_init``)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_project.heap import YOUNG_THRESHOLD, freeze_startup_objects

ROOT = Path(__file__).resolve().parents[2]


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def frozen_heap() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()  # the test process goes on collecting everything, as before
    gc.set_threshold(*threshold)


def test_garbage_of_the_start_is_collected_first_and_the_rest_frozen(frozen_heap: None) -> None:
    dropped = Node()
    dropped_ref = weakref.ref(dropped)
    del dropped
    kept = Node()
    freeze_startup_objects()
    assert dropped_ref() is None  # collected before the freeze, not kept for ever
    assert gc.get_freeze_count() > 0
    assert not any(obj is kept for obj in gc.get_objects(generation=2))  # in the permanent generation now


def test_cycles_made_after_the_freeze_are_still_collected(frozen_heap: None) -> None:
    freeze_startup_objects()
    later = Node()
    later_ref = weakref.ref(later)
    del later
    gc.collect()
    assert later_ref() is None


def test_without_an_explicit_collection_cycles_are_collected_every_young_threshold_objects(frozen_heap: None) -> None:
    freeze_startup_objects()
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    first = Node()
    first_ref = weakref.ref(first)
    del first
    kept = [Node() for _ in range(YOUNG_THRESHOLD + 100)]  # the objects alive grow past the threshold
    assert first_ref() is None  # a young collection came on its own and took the dropped cycle
    del kept


def test_objects_freed_by_reference_counting_bring_no_collection(frozen_heap: None) -> None:
    freeze_startup_objects()
    collections = []
    gc.callbacks.append(lambda phase, info: collections.append(info) if phase == "start" else None)
    try:
        for _ in range(20):
            request_objects = [{"call": [i]} for i in range(2_000)]  # a request's objects, freed when it ends
            del request_objects
    finally:
        gc.callbacks.pop()
    assert collections == []  # 80,000 containers made, never more than ~4,000 alive at once


HOOK = """
import gc, runpy
from gateway_project import wiring
wiring.warm_up = lambda: print("frozen at warm-up:", gc.get_freeze_count())
runpy.run_path("gateway_project/gunicorn.conf.py")["post_worker_init"](None)
print("frozen after:", gc.get_freeze_count())
print("young threshold:", gc.get_threshold()[0])
"""


def test_the_worker_freezes_after_building_its_runtime(tmp_path: Path) -> None:
    """gunicorn.conf.py's post_worker_init, run as gunicorn runs it (in a process of its own: it patches)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SECRET_KEY": "test",
    }
    done = subprocess.run([sys.executable, "-c", HOOK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ") for line in done.stdout.splitlines())
    assert lines["frozen at warm-up"] == "0"  # the runtime is built first...
    assert int(lines["frozen after"]) > 10_000  # ...then everything alive is frozen
    assert int(lines["young threshold"]) == YOUNG_THRESHOLD
