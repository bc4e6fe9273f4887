"""How the calls of one stage run in parallel: a seam with three strategies.

* ``GeventSpawner`` — greenlets; chosen when the process is monkey-patched
  (gunicorn's gevent workers). Cancelling kills them, so a cancelled call stops
  at its next network wait and gives back its bulkhead slot.
* ``ThreadSpawner`` — daemon threads, for unpatched processes and tests.
  Threads cannot be killed: a cancelled one is abandoned (its result ignored);
  it stops at the next retry boundary and its attempt timeout bounds it.
* ``InlineSpawner`` — runs each task at once, in order; deterministic tests.

Every task starts in a copy of the spawning context
(``contextvars.copy_context().run``): a new greenlet or thread would otherwise
start with empty contextvars and lose the OpenTelemetry span and request state.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Running(Protocol[T_co]):
    def next_done(self, timeout_s: float) -> tuple[int, T_co | Exception] | None:
        """The next finished task, or None when ``timeout_s`` passed first."""
        ...

    def cancel(self) -> None: ...


class Spawner(Protocol):
    def start(self, tasks: Sequence[Callable[[], T]]) -> Running[T]: ...


def _outcome_of(task: Callable[[], T]) -> T | Exception:
    try:
        return task()
    except Exception as error:  # noqa: BLE001 - handed to the executor, which re-raises it
        return error


class _Mailbox(Generic[T]):
    """Finished tasks, in completion order, over a queue that suits the strategy."""

    def __init__(self, box: Any, empty: type[Exception]) -> None:
        self._box = box
        self._empty = empty

    def put(self, index: int, task: Callable[[], T]) -> None:
        self._box.put((index, _outcome_of(task)))

    def next_done(self, timeout_s: float) -> tuple[int, T | Exception] | None:
        try:
            item: tuple[int, T | Exception] = self._box.get(timeout=max(0.0, timeout_s))
        except self._empty:
            return None
        return item


class _ThreadRun(_Mailbox[T]):
    def __init__(self, tasks: Sequence[Callable[[], T]]) -> None:
        super().__init__(queue.Queue(), queue.Empty)
        for index, task in enumerate(tasks):
            context = contextvars.copy_context()
            threading.Thread(target=context.run, args=(self.put, index, task), daemon=True).start()

    def cancel(self) -> None:
        return None  # abandoned: results are never read


class ThreadSpawner:
    def start(self, tasks: Sequence[Callable[[], T]]) -> Running[T]:
        return _ThreadRun(tasks)


class _InlineRun(_Mailbox[T]):
    def __init__(self, tasks: Sequence[Callable[[], T]]) -> None:
        super().__init__(queue.SimpleQueue(), queue.Empty)
        for index, task in enumerate(tasks):
            self.put(index, task)

    def cancel(self) -> None:
        return None


class InlineSpawner:
    def start(self, tasks: Sequence[Callable[[], T]]) -> Running[T]:
        return _InlineRun(tasks)


class _GreenletRun(_Mailbox[T]):
    def __init__(self, tasks: Sequence[Callable[[], T]]) -> None:
        import gevent
        import gevent.queue

        super().__init__(gevent.queue.Queue(), gevent.queue.Empty)
        self._greenlets = [
            gevent.spawn(contextvars.copy_context().run, self.put, index, task) for index, task in enumerate(tasks)
        ]
        self._killall = gevent.killall

    def cancel(self) -> None:
        self._killall(self._greenlets, block=False)


class GeventSpawner:
    def start(self, tasks: Sequence[Callable[[], T]]) -> Running[T]:
        return _GreenletRun(tasks)


def default_spawner() -> Spawner:
    """Greenlets when gevent has patched this process, threads otherwise."""
    try:
        from gevent import monkey
    except ImportError:
        return ThreadSpawner()
    return GeventSpawner() if monkey.is_module_patched("threading") else ThreadSpawner()
