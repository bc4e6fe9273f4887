"""How the calls of one stage run in parallel: a seam with three strategies.

* ``GeventSpawner`` — greenlets; chosen when the process is monkey-patched
  (gunicorn's gevent workers). Tasks run on parked worker greenlets
  (``worker_greenlets``: no greenlet made per call). Cancelling interrupts them,
  so a cancelled call stops at its next network wait and gives back its bulkhead slot.
* ``ThreadSpawner`` — daemon threads, for unpatched processes and tests.
  Threads cannot be killed: a cancelled one is abandoned (its result ignored);
  it stops at the next retry boundary and its attempt timeout bounds it.
* ``InlineSpawner`` — runs each task at once, in order; deterministic tests.

``later`` arms a timer that starts one task when it fires (a hedge, ``resilience.hedge``):
the common case is the timer being cancelled before it fires, so arming one must cost
next to nothing — a gevent loop timer, no greenlet. ``InlineSpawner``'s never fires: with
no concurrency, whatever it would race has already finished by then.

Every task starts in a copy of the spawning context
(``contextvars.copy_context().run``): a new greenlet or thread would otherwise
start with empty contextvars and lose the OpenTelemetry span and request state.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from orchestration.worker_greenlets import WorkerGreenlets

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Running(Protocol[T_co]):
    def next_done(self, timeout_s: float) -> tuple[int, T_co | Exception] | None:
        """The next finished task, or None when ``timeout_s`` passed first."""
        ...

    def cancel(self) -> None: ...


class Spawner(Protocol):
    def start(self, tasks: Sequence[Callable[[], T]]) -> Running[T]: ...

    def later(self, delay_s: float, task: Callable[[], T]) -> Running[T]:
        """``task`` started after ``delay_s`` (index 0 in ``next_done``); ``cancel`` disarms
        the timer, or kills the task once started. ``next_done`` is for a task known started."""
        ...


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


class _ThreadLater(_Mailbox[T]):
    def __init__(self, delay_s: float, task: Callable[[], T]) -> None:
        super().__init__(queue.Queue(), queue.Empty)
        context = contextvars.copy_context()
        self._timer = threading.Timer(delay_s, context.run, args=(self.put, 0, task))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()  # a task already started is abandoned, like ``_ThreadRun``'s


class ThreadSpawner:
    def start(self, tasks: Sequence[Callable[[], T]]) -> Running[T]:
        return _ThreadRun(tasks)

    def later(self, delay_s: float, task: Callable[[], T]) -> Running[T]:
        return _ThreadLater(delay_s, task)


class _InlineRun(_Mailbox[T]):
    def __init__(self, tasks: Sequence[Callable[[], T]]) -> None:
        super().__init__(queue.SimpleQueue(), queue.Empty)
        for index, task in enumerate(tasks):
            self.put(index, task)

    def cancel(self) -> None:
        return None


class _Never:
    def next_done(self, timeout_s: float) -> None:
        return None

    def cancel(self) -> None:
        return None


class InlineSpawner:
    def start(self, tasks: Sequence[Callable[[], T]]) -> Running[T]:
        return _InlineRun(tasks)

    def later(self, delay_s: float, task: Callable[[], T]) -> Running[T]:
        return _Never()


class _QueueResults:
    """Where a worker greenlet posts a task's result (``worker_greenlets.Mailbox``)."""

    __slots__ = ("_box",)

    def __init__(self, box: Any) -> None:
        self._box = box

    def put_result(self, index: int, result: Any) -> None:
        self._box.put((index, result))


class _PooledRun(_Mailbox[T]):
    """The tasks on parked worker greenlets (``worker_greenlets``): no greenlet made per task;
    cancelling interrupts those still running at their next wait (``Greenlet.kill``'s way)."""

    def __init__(self, tasks: Sequence[Callable[[], T]], workers: WorkerGreenlets, queue: Any, empty: Any) -> None:
        super().__init__(queue(), empty)
        self._workers = workers
        # The jobs post to the queue, not to this object, which holds them: a reference cycle
        # here kept every finished stage (its jobs, contexts, requests) for the cyclic collector,
        # ~50 objects a request that full collections then walked (bench/README.md, round 11).
        results = _QueueResults(self._box)
        self._running = [workers.start(results, index, task) for index, task in enumerate(tasks)]

    def cancel(self) -> None:
        interrupt = self._workers.interrupt
        for running in self._running:
            interrupt(running)


class _GreenletLater(Generic[T]):
    """A loop timer (no greenlet) until it fires; then one greenlet, in the context of the
    arming greenlet (the timer's callback runs in the hub, whose context is not the request's)."""

    __slots__ = ("_context", "_greenlet", "_task", "_timer")

    _get_hub: Any = None  # gevent's, set by the first ``GeventSpawner`` (gevent is imported only then)
    _spawn: Any = None

    def __init__(self, delay_s: float, task: Callable[[], T]) -> None:
        self._task = task
        self._greenlet: Any = None
        self._context = contextvars.copy_context()
        self._timer = self._get_hub().loop.timer(delay_s)
        self._timer.start(_fire, self)  # a function and this object: no bound method made per timer

    def fire(self) -> None:
        self._timer.close()
        self._greenlet = self._spawn(self._context.run, _outcome_of, self._task)

    def next_done(self, timeout_s: float) -> tuple[int, T | Exception] | None:
        greenlet = self._greenlet
        if greenlet is None:
            return None
        greenlet.join(max(0.0, timeout_s))
        if not greenlet.ready():
            return None
        value: T | Exception = greenlet.value
        return 0, value

    def cancel(self) -> None:
        if self._greenlet is None:
            self._timer.close()
        else:
            self._greenlet.kill(block=False)


def _fire(later: _GreenletLater[Any]) -> None:
    later.fire()


class GeventSpawner:
    # ``later(delay_s, task)`` is the class itself: arming a hedge's timer is one Python call
    # (issue 14: the resilience features under 5 % CPU when not triggered).
    later = _GreenletLater

    def __init__(self) -> None:
        # here, not per call: an import statement is a lookup on every call
        import gevent
        import gevent.queue

        from orchestration.worker_greenlets import WorkerGreenlets

        self._workers = WorkerGreenlets.for_current_hub
        self._queue = gevent.queue.Queue
        self._empty = gevent.queue.Empty
        _GreenletLater._get_hub = staticmethod(gevent.get_hub)
        _GreenletLater._spawn = staticmethod(gevent.spawn)

    def start(self, tasks: Sequence[Callable[[], T]]) -> Running[T]:
        return _PooledRun(tasks, self._workers(), self._queue, self._empty)


def default_spawner() -> Spawner:
    """Greenlets when gevent has patched this process, threads otherwise."""
    try:
        from gevent import monkey
    except ImportError:
        return ThreadSpawner()
    return GeventSpawner() if monkey.is_module_patched("threading") else ThreadSpawner()
