"""CPU runs per request: counted per thread, so a thread that ends cannot make them negative."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import procstat


def test_thread_delta_counts_only_what_live_threads_ran_since() -> None:
    before = {1: 100, 2: 50, 3: 70}  # thread 3 ends in between, thread 4 starts
    after = {1: 130, 2: 55, 4: 9}
    assert procstat.thread_delta(before, after) == 30 + 5 + 9


def test_threads_are_read_by_id_and_an_ended_one_drops_out() -> None:
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    before = procstat.thread_runs(os.getpid())
    assert worker.native_id in before
    stop.set()
    worker.join()
    after = procstat.thread_runs(os.getpid())
    assert worker.native_id not in after
    main = threading.main_thread().native_id
    assert procstat.thread_delta(before, after) == after[main] - before[main] >= 0


def test_a_tree_sample_counts_each_threads_time_on_a_cpu_exactly() -> None:
    """The scheduler's ns per thread: a busy loop of ~30 ms shows as about that much, where the
    tick-sampled utime+stime moves in whole ticks."""
    before = procstat.sample_tree(os.getpid())
    deadline = time.thread_time() + 0.03
    while time.thread_time() < deadline:
        pass
    after = procstat.sample_tree(os.getpid())
    spent_ms = procstat.thread_delta(before.on_cpu_ns, after.on_cpu_ns) / 1e6
    assert 30 <= spent_ms < 300
    assert threading.main_thread().native_id in after.on_cpu_ns
