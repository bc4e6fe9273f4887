"""A/B for bench/micro.py --ab: B = the admission limit's CPU pressure read through one open
descriptor (``admission.SchedstatReader``, round 13), A = ``Path.read_text`` on every step
(open, read, close ten times a second, as before)."""

from pathlib import Path

import gateway_project.urls  # noqa: F401  # its import installs the gate and starts its limit
from gateway_project import wiring
from orchestration.web import admission

_pressure = wiring._adaptive_limits[-1]._pressure
_kept = _pressure._read


def _read_text(path: Path = admission.SCHEDSTAT) -> tuple[float, float] | None:
    try:
        running_ns, waiting_ns, _ = path.read_text().split()
        return int(running_ns) / 1e9, int(waiting_ns) / 1e9
    except (OSError, ValueError):
        return None


def toggle(on: bool) -> None:
    _pressure._read = _kept if on else _read_text
