"""``Spawner.later``: the timer a hedge is armed with (``resilience.hedge``). A disarmed timer
never starts its task; a fired one runs it once, in the context of the greenlet that armed it."""

from __future__ import annotations

import contextvars
import threading

import pytest

from orchestration.spawn import GeventSpawner, InlineSpawner, Spawner, ThreadSpawner

_request = contextvars.ContextVar("_request", default="none")


@pytest.mark.parametrize("spawner", [ThreadSpawner(), GeventSpawner()], ids=["threads", "gevent"])
def test_a_fired_timer_runs_its_task_once_in_the_arming_context(spawner: Spawner) -> None:
    _request.set("checkout")
    ran: list[str] = []

    def task() -> str:
        ran.append(_request.get())
        return "hedge"

    later = spawner.later(0.01, task)
    if isinstance(spawner, GeventSpawner):
        import gevent

        gevent.sleep(0.05)  # the timer fires in the hub while this greenlet waits
    else:
        threading.Event().wait(0.05)
    assert later.next_done(1.0) == (0, "hedge")
    assert ran == ["checkout"]


@pytest.mark.parametrize("spawner", [ThreadSpawner(), GeventSpawner()], ids=["threads", "gevent"])
def test_a_cancelled_timer_never_starts_its_task(spawner: Spawner) -> None:
    ran: list[int] = []
    later = spawner.later(0.01, lambda: ran.append(1))
    later.cancel()
    if isinstance(spawner, GeventSpawner):
        import gevent

        gevent.sleep(0.05)
    else:
        threading.Event().wait(0.05)
    assert ran == []


def test_inline_timers_never_fire() -> None:
    ran: list[int] = []
    later = InlineSpawner().later(0.0, lambda: ran.append(1))
    assert later.next_done(0.01) is None and ran == []
