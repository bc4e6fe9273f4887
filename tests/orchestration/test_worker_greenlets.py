"""Parked worker greenlets (``orchestration.worker_greenlets``) behind ``GeventSpawner.start``:
results, context, reuse, cancellation, and what a late cancellation must not touch."""

from __future__ import annotations

import contextvars

import gevent
import pytest
from greenlet import GreenletExit, getcurrent

from orchestration import worker_greenlets
from orchestration.spawn import GeventSpawner
from orchestration.worker_greenlets import Job, WorkerGreenlets

marker = contextvars.ContextVar("marker", default="lost")


class Box:
    def __init__(self) -> None:
        self.results: list[tuple[int, object]] = []

    def put_result(self, index: int, result: object) -> None:
        self.results.append((index, result))


def test_results_arrive_in_completion_order_with_the_callers_context() -> None:
    marker.set("request")

    def task(delay_s: float, value: str):
        def run() -> str:
            gevent.sleep(delay_s)
            return f"{value}:{marker.get()}"

        return run

    running = GeventSpawner().start([task(0.03, "slow"), task(0.0, "fast")])
    assert running.next_done(1.0) == (1, "fast:request")
    assert running.next_done(1.0) == (0, "slow:request")


def test_a_tasks_exception_is_handed_back_not_raised_in_the_hub() -> None:
    def fails() -> None:
        raise ValueError("bad answer")

    index, result = GeventSpawner().start([fails]).next_done(1.0)
    assert index == 0 and isinstance(result, ValueError) and str(result) == "bad answer"


def test_workers_are_reused_between_stages() -> None:
    spawner = GeventSpawner()

    def stage() -> set[object]:
        seen: set[object] = set()

        def task() -> None:
            seen.add(getcurrent())
            gevent.sleep(0.01)

        running = spawner.start([task, task, task])
        for _ in range(3):
            assert running.next_done(1.0) is not None
        gevent.sleep(0)  # the workers park once their results are handed over
        return seen

    first = stage()
    second = stage()
    assert len(first) == 3
    assert second <= first  # no greenlet made for the second stage


def test_cancel_stops_a_running_task_at_its_wait_and_the_worker_serves_again() -> None:
    events: list[str] = []

    def stuck() -> str:
        try:
            gevent.sleep(5)
        except GreenletExit:
            events.append("interrupted")
            raise
        return "never"

    spawner = GeventSpawner()
    running = spawner.start([stuck])
    gevent.sleep(0.01)  # started and waiting
    running.cancel()
    gevent.sleep(0.01)
    assert events == ["interrupted"]
    assert running.next_done(0.05) is None  # an interrupted task's result is never handed over
    assert spawner.start([lambda: "again"]).next_done(1.0) == (0, "again")


def test_a_late_interrupt_leaves_the_workers_next_job_alone() -> None:
    pool = WorkerGreenlets.for_current_hub()
    first_box, second_box = Box(), Box()
    first = Job(first_box, 0, lambda: "first", contextvars.copy_context())
    worker = pool.submit(first)
    gevent.sleep(0.01)
    assert first_box.results == [(0, "first")]

    def slow_second() -> str:
        gevent.sleep(0.03)
        return "second"

    second = Job(second_box, 0, slow_second, contextvars.copy_context())
    assert pool.submit(second) is worker  # the parked worker takes it
    pool.interrupt((worker, first))  # meant for the job that already finished
    gevent.sleep(0.06)
    assert second_box.results == [(0, "second")]


def test_at_most_max_idle_workers_stay_parked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_greenlets, "MAX_IDLE", 2)
    monkeypatch.setattr(WorkerGreenlets, "_pools", {})
    pool = WorkerGreenlets.for_current_hub()
    running = GeventSpawner().start([lambda: gevent.sleep(0.01)] * 5)
    for _ in range(5):
        assert running.next_done(1.0) is not None
    gevent.sleep(0)
    assert len(pool._idle) == 2


def test_a_task_ending_its_greenlet_is_reported_and_the_pool_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    class Fatal(BaseException):
        pass

    def fatal() -> None:
        raise Fatal("stop")

    spawner = GeventSpawner()
    running = spawner.start([fatal])
    assert running.next_done(0.05) is None  # as with a spawned greenlet: nothing handed back
    assert "Fatal" in capsys.readouterr().err  # the hub's error report
    assert spawner.start([lambda: 7]).next_done(1.0) == (0, 7)


def test_a_finished_stage_is_freed_by_reference_counting_not_left_to_the_cyclic_collector() -> None:
    """A cycle between a stage's run and its jobs kept every finished stage (its jobs, contexts,
    the request objects its tasks held) until a full collection: ~50 objects a request."""
    import gc
    import weakref

    class Payload:  # what a task holds: the request's objects
        pass

    def stage() -> weakref.ref[Payload]:
        payload = Payload()

        def task() -> int:
            gevent.sleep(0.001)
            return id(payload)

        running = GeventSpawner().start([task, task])
        running.next_done(1.0)
        running.next_done(1.0)
        return weakref.ref(payload)

    gc.disable()  # only reference counting may free it
    try:
        payload = stage()
        gevent.sleep(0)  # the workers park again, dropping their finished jobs
        assert payload() is None
    finally:
        gc.enable()
