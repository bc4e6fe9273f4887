"""A/B for bench/micro.py --ab: B = a stage's worker greenlets post results to the queue
(``spawn._QueueResults``: no reference cycle), A = to the ``_PooledRun`` that holds them (round 10's
code: every finished stage a cycle, ~50 objects a request left to the cyclic collector).
Run beside ``--on bench/ab/gc_freeze.py``: production freezes the start-up heap."""

from typing import Any

from orchestration import spawn

_ACYCLIC = spawn._PooledRun.__init__


def _cyclic(self: Any, tasks: Any, workers: Any, queue: Any, empty: Any) -> None:
    spawn._Mailbox.__init__(self, queue(), empty)
    self._workers = workers
    self._running = [workers.start(self, index, task) for index, task in enumerate(tasks)]


def _put_result(self: Any, index: int, result: Any) -> None:
    self._box.put((index, result))


def toggle(on: bool) -> None:
    spawn._PooledRun.__init__ = _ACYCLIC if on else _cyclic  # type: ignore[method-assign]
    spawn._PooledRun.put_result = _put_result  # type: ignore[attr-defined]
