"""``Spawner.later``: the timer a hedge is armed with (``resilience.hedge``). A disarmed timer
never starts its task; a fired one runs it once, in the context of the greenlet that armed it."""

from __future__ import annotations

import contextvars
import threading
import time
from functools import partial

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


CANCEL_DELAY_S = 0.2  # far above scheduling noise, so the cancel comes first; waited out twice after it


@pytest.mark.parametrize("spawner", [ThreadSpawner(), GeventSpawner()], ids=["threads", "gevent"])
def test_a_cancelled_timer_never_starts_its_task(spawner: Spawner) -> None:
    for _ in range(5):  # a stall past the delay before ``cancel`` (a loaded machine) proves nothing: again
        ran: list[int] = []
        armed = time.monotonic()
        later = spawner.later(CANCEL_DELAY_S, partial(ran.append, 1))  # this turn's list, late firings aside
        later.cancel()
        if time.monotonic() - armed < CANCEL_DELAY_S:
            break
    if isinstance(spawner, GeventSpawner):
        import gevent

        gevent.sleep(2 * CANCEL_DELAY_S)  # the timer would have fired in the hub while this greenlet waits
    else:
        threading.Event().wait(2 * CANCEL_DELAY_S)
    assert ran == []


def test_inline_timers_never_fire() -> None:
    ran: list[int] = []
    later = InlineSpawner().later(0.0, lambda: ran.append(1))
    assert later.next_done(0.01) is None and ran == []
