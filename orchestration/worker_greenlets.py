"""Parked greenlets that run the tasks of a stage, so a call does not make a greenlet.

``gevent.spawn`` per call (three per checkout) made a ``Greenlet`` with its bookkeeping
and, on the new greenlet's first Python frame, CPython 3.11's 16 KiB frame-stack chunk:
an ``mmap`` and a ``munmap`` per call (bench/README.md, round 9). A worker here is a raw
greenlet whose parent is the hub; between tasks it is parked in ``hub.switch()``, keeping
its frame stack. ``submit`` hands it a job through a loop callback (what starting a gevent
greenlet costs, without the greenlet), ``interrupt`` throws ``GreenletExit`` into it
as ``Greenlet.kill`` would, but only while it still runs that job: a worker interrupted
late has already moved on, and its next job must not be the one killed.

One pool per process and hub (``WorkerGreenlets.for_current_hub``); up to ``MAX_IDLE``
workers are kept parked, the rest end when their task does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextvars import Context, copy_context
from typing import Any, Protocol

from gevent import get_hub
from greenlet import GreenletExit, getcurrent
from greenlet import greenlet as RawGreenlet

MAX_IDLE = 256  # parked workers kept per process (~20 KiB each: a greenlet and its frame stack)


class Mailbox(Protocol):
    def put_result(self, index: int, result: Any) -> None: ...


class Job:
    """One task handed to a worker: where its result goes, and under which index."""

    __slots__ = ("context", "index", "mailbox", "task")

    def __init__(self, mailbox: Mailbox, index: int, task: Callable[[], Any], context: Context) -> None:
        self.mailbox = mailbox
        self.index = index
        self.task = task
        self.context = context


def _outcome_of(task: Callable[[], Any]) -> Any:
    try:
        return task()
    except Exception as error:  # noqa: BLE001 - handed to the waiting side, which re-raises it
        return error


class _Worker:
    __slots__ = ("greenlet", "job")

    def __init__(self) -> None:
        self.greenlet: Any = None
        self.job: Job | None = None


Running = tuple[_Worker, Job]  # a started job and the worker it runs on


class WorkerGreenlets:
    _pools: dict[tuple[int, int], WorkerGreenlets] = {}

    def __init__(self, hub: Any) -> None:
        self._hub = hub
        self._run_callback = hub.loop.run_callback
        self._idle: list[_Worker] = []

    @classmethod
    def for_current_hub(cls) -> WorkerGreenlets:
        """The pool of this process's current hub (a forked child or another thread gets its own)."""
        hub = get_hub()
        key = (os.getpid(), id(hub))
        pool = cls._pools.get(key)
        if pool is None or pool._hub is not hub:
            pool = cls._pools[key] = cls(hub)
        return pool

    def start(self, mailbox: Mailbox, index: int, task: Callable[[], Any]) -> Running:
        """``task`` in a copy of the caller's context, its result to ``mailbox`` under ``index``."""
        job = Job(mailbox, index, task, copy_context())
        return self.submit(job), job

    def submit(self, job: Job) -> _Worker:
        """Starts ``job`` in a parked worker (or a new one) at the hub's next turn."""
        worker = self._idle.pop() if self._idle else self._new_worker()
        worker.job = job
        self._run_callback(worker.greenlet.switch, job)
        return worker

    def interrupt(self, running: Running) -> None:
        """Stops the job at its next wait if its worker still runs it (``Greenlet.kill(block=False)``)."""
        self._run_callback(self._throw_if_running, *running)

    def _throw_if_running(self, worker: _Worker, job: Job) -> None:
        if worker.job is job and worker.greenlet is not getcurrent():
            worker.greenlet.throw(GreenletExit)

    def _new_worker(self) -> _Worker:
        worker = _Worker()
        worker.greenlet = RawGreenlet(lambda job: self._serve(worker, job), self._hub)
        return worker

    def _serve(self, worker: _Worker, job: Job) -> None:
        park = self._hub.switch
        while True:
            try:
                result = job.context.run(_outcome_of, job.task)
            except GreenletExit:
                worker.job = None  # interrupted: its result is not waited for
            except BaseException:  # noqa: BLE001 - what would end a spawned greenlet: reported, not raised in the hub
                worker.job = None
                self._hub.handle_error(getcurrent(), *sys.exc_info())
                return
            else:
                worker.job = None
                job.mailbox.put_result(job.index, result)
            job = None  # type: ignore[assignment]  # nothing of a finished job kept while parked
            if len(self._idle) >= MAX_IDLE:
                return
            self._idle.append(worker)
            job = park()
