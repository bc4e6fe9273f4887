"""RuntimeHolder: one rebuild per configuration change, the version read off the request
path once a poller runs, and a failed poll that keeps the current plan serving."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from orchestration.edge.client_auth import NoAuth
from orchestration.plan import Layer, Plan
from orchestration.routing import Router
from orchestration.web.runtime import GatewayRuntime, LoadedConfig, RuntimeHolder


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeRegistry:
    """The database as the holder sees it: a version to read and a configuration to load."""

    version: str = "v1"
    loaded_label: str | None = None  # the version the loaded plan says it is (None: ``version``)
    down: bool = False
    reads: int = 0
    loads: list[str] = field(default_factory=list)

    def read_version(self) -> str:
        self.reads += 1
        if self.down:
            raise ConnectionError("database unreachable")
        return self.version

    def load(self) -> LoadedConfig:
        if self.down:
            raise ConnectionError("database unreachable")
        label = self.version if self.loaded_label is None else self.loaded_label
        self.loads.append(label)
        plan = Plan(version=label, layer=Layer(name="t", base_path="/"), services={}, endpoints=())
        return LoadedConfig(plan=plan, api_keys={})


def build(config: LoadedConfig) -> GatewayRuntime:
    return GatewayRuntime(
        plan=config.plan, router=Router(config.plan), authenticator=NoAuth(), executor=None, pool=None
    )


def direct(work: Callable[[], bool]) -> bool:
    """The poll runner with nothing around the poll."""
    return work()


def make_holder(registry: FakeRegistry, clock: FakeClock, poll_s: float = 1.0) -> RuntimeHolder:
    return RuntimeHolder(
        load=registry.load, read_version=registry.read_version, build=build, poll_s=poll_s, clock=clock
    )


class StopLoop(Exception):
    pass


def stop_after(polls: int, waits: list[float]) -> object:
    def wait(timeout_s: float) -> None:
        waits.append(timeout_s)
        if len(waits) == polls:
            raise StopLoop

    return wait


# Without a poller (tests, runserver, a shell): current() looks itself, once per poll_s


def test_version_is_read_at_most_once_per_poll_interval_and_plan_rebuilt_on_change() -> None:
    registry, clock = FakeRegistry(), FakeClock()
    holder = make_holder(registry, clock)
    assert holder.current().plan.version == "v1"
    registry.version = "v2"
    clock.now += 0.5
    assert holder.current().plan.version == "v1"  # not yet looked
    clock.now += 0.6
    assert holder.current().plan.version == "v2"
    assert registry.loads == ["v1", "v2"]
    assert registry.reads == 2


def test_unchanged_version_does_not_rebuild() -> None:
    registry, clock = FakeRegistry(), FakeClock()
    holder = make_holder(registry, clock)
    first = holder.current()
    for _ in range(5):
        clock.now += 2
        assert holder.current() is first
    assert registry.loads == ["v1"]
    assert registry.reads == 6


def test_expire_makes_the_next_request_look_at_once() -> None:
    registry, clock = FakeRegistry(), FakeClock()
    holder = make_holder(registry, clock)
    holder.current()
    registry.version = "v2"
    holder.expire()
    assert holder.current().plan.version == "v2"


def test_a_failed_inline_look_keeps_serving_and_waits_a_poll_before_the_next(caplog: pytest.LogCaptureFixture) -> None:
    registry, clock = FakeRegistry(), FakeClock()
    holder = make_holder(registry, clock)
    first = holder.current()
    registry.down, clock.now = True, clock.now + 2
    with caplog.at_level(logging.WARNING, logger="orchestration.web.runtime"):
        assert holder.current() is first
        assert holder.current() is first  # within the poll interval: not read again
    assert registry.reads == 2
    assert "configuration poll failed; still serving version v1" in caplog.text


def test_with_nothing_built_yet_a_failure_is_raised() -> None:
    holder = make_holder(FakeRegistry(down=True), FakeClock())
    with pytest.raises(ConnectionError):
        holder.current()


# One rebuild per change, whatever the loaded plan says


def test_a_plan_labelled_differently_from_the_read_version_is_rebuilt_once() -> None:
    """The old failure: the version read (a stale Redis copy) never equalled the loaded
    plan's, so every poll rebuilt. The holder compares against what it read."""
    registry, clock = FakeRegistry(version="v2", loaded_label="v1"), FakeClock()
    holder = make_holder(registry, clock)
    holder.current()
    for _ in range(5):
        holder.poll(direct)
    assert registry.loads == ["v1"]
    assert registry.reads == 6


def test_a_change_landing_between_read_and_load_costs_one_more_rebuild_not_a_loop() -> None:
    registry, clock = FakeRegistry(), FakeClock()
    holder = make_holder(registry, clock)
    holder.current()
    registry.version, registry.loaded_label = "v2", "v3"  # v3 committed after the read, before the load
    holder.poll(direct)
    registry.version, registry.loaded_label = "v3", None
    for _ in range(3):
        holder.poll(direct)
    assert registry.loads == ["v1", "v3", "v3"]
    assert holder.current().plan.version == "v3"


# With a poller (every gunicorn worker): requests never read the version


def test_once_polled_requests_never_read_the_version_and_a_poll_swaps_the_runtime() -> None:
    registry, clock, waits = FakeRegistry(), FakeClock(), []
    holder = make_holder(registry, clock, poll_s=0.5)
    first = holder.current()
    reads_before = registry.reads
    with pytest.raises(StopLoop):
        holder.poll_forever(direct, wait=stop_after(1, waits))
    registry.version = "v2"
    for _ in range(3):
        clock.now += 10
        assert holder.current() is first  # long past the poll interval, still no look
    assert registry.reads == reads_before + 1
    with pytest.raises(StopLoop):
        holder.poll_forever(direct, wait=stop_after(2, waits))
    assert holder.current().plan.version == "v2"
    assert registry.loads == ["v1", "v2"]
    assert waits == [0.5, 0.5]


def test_each_poll_runs_through_the_runner_and_a_failure_keeps_the_plan(caplog: pytest.LogCaptureFixture) -> None:
    registry, clock, waits, runs = FakeRegistry(), FakeClock(), [], []
    holder = make_holder(registry, clock)
    first = holder.current()
    registry.down = True
    caplog.clear()

    def counted(work: Callable[[], bool]) -> bool:
        runs.append("run")
        return work()

    with caplog.at_level(logging.INFO, logger="orchestration.web.runtime"), pytest.raises(StopLoop):
        holder.poll_forever(counted, wait=stop_after(3, waits))
    assert runs == ["run"] * 3
    assert holder.current() is first
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "configuration poll failed; still serving version v1",
        "configuration poll failed (2 in a row); still serving version v1",
        "configuration poll failed (3 in a row); still serving version v1",
    ]
    assert caplog.records[0].exc_info is not None  # the first one with its traceback
    registry.down, registry.version = False, "v2"
    holder.poll(counted)
    assert holder.current().plan.version == "v2"
    assert caplog.records[-1].getMessage() == "configuration poll works again after 3 failures"


def test_a_failing_runner_does_not_end_the_loop() -> None:
    registry, clock, waits = FakeRegistry(), FakeClock(), []
    holder = make_holder(registry, clock)

    def broken(work: Callable[[], bool]) -> bool:
        raise OSError("no connection")

    with pytest.raises(StopLoop):
        holder.poll_forever(broken, wait=stop_after(3, waits))
    assert len(waits) == 3 and registry.reads == 0


def test_expire_wakes_the_poller_before_its_interval() -> None:
    """The worker that saved a change looks at once (an hour-long interval here)."""
    registry, clock = FakeRegistry(), FakeClock()
    polled = threading.Semaphore(0)
    holder = make_holder(registry, clock, poll_s=3600)
    holder.current()

    def released(work: Callable[[], bool]) -> bool:
        try:
            return work()
        finally:
            polled.release()

    holder.start_polling(run=released)
    assert polled.acquire(timeout=10)  # the first poll, at start
    registry.version = "v2"
    holder.expire()
    assert polled.acquire(timeout=10)
    assert holder.current().plan.version == "v2"
