"""The draining flag: raised by the gunicorn master on SIGTERM, read by its workers.

A stopping instance must tell its load balancer first (``/readyz`` answers 503 at
once) and go on serving while the balancer takes it out, then stop accepting and
let the requests in flight finish (contract section 9, gateway_project/graceful_stop.py).

The master and its workers are separate processes, so the flag is a file: the
master creates it, the workers ``stat`` it (only for ``/readyz`` and to close
keep-alive connections while draining). Its path reaches the workers through the
environment they inherit (``GATEWAY_DRAIN_FLAG_FILE``, set by the master before it
forks). Without it (``runserver``, tests, a Celery worker) nothing is ever draining.
No Django here: the master imports this before any worker exists.
"""

from __future__ import annotations

import os
from pathlib import Path

FLAG_FILE_VARIABLE = "GATEWAY_DRAIN_FLAG_FILE"


class DrainFlag:
    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self._path = Path(path) if path else None

    @classmethod
    def from_environment(cls) -> DrainFlag:
        return cls(os.environ.get(FLAG_FILE_VARIABLE) or None)

    @property
    def path(self) -> Path | None:
        return self._path

    def raise_flag(self) -> None:
        if self._path is not None:
            self._path.touch()

    def clear(self) -> None:
        if self._path is not None:
            self._path.unlink(missing_ok=True)

    def is_raised(self) -> bool:
        return self._path is not None and self._path.exists()


_flag: DrainFlag | None = None


def process_flag() -> DrainFlag:
    """This process's flag, read from the environment at first use: in a worker, after the
    fork (the master may have imported this module before it set the variable)."""
    global _flag
    if _flag is None:
        _flag = DrainFlag.from_environment()
    return _flag


def install_flag(flag: DrainFlag | None) -> DrainFlag | None:
    """Use ``flag`` from now on (tests; None: read the environment again); returns the previous one."""
    global _flag
    previous, _flag = _flag, flag
    return previous
