"""How many CPUs this process may use, for the default number of gunicorn workers.

``multiprocessing.cpu_count()`` counts the host's CPUs: a container limited to one CPU on a
32-CPU node would start 32 workers (~120 MiB each, every one of them taking turns on the
one CPU's quota). What the process may really use is its CPU affinity (``taskset``, a
cpuset), capped by a cgroup CPU quota (``docker run --cpus``, a Kubernetes CPU limit): the
quota rounded up, as the quota is time on any of the allowed CPUs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


MIN_WORKERS = 2  # a worker stuck in a long request or restarting leaves another serving


def default_workers() -> int:
    """``WEB_CONCURRENCY``'s default: one gevent worker per usable CPU, at least ``MIN_WORKERS``."""
    return max(MIN_WORKERS, usable_cpus())


def usable_cpus(root: Path = CGROUP_ROOT, own_cgroup: Path = PROC_SELF_CGROUP) -> int:
    """CPUs in this process's affinity, capped by its cgroup's CPU quota; at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity call on this platform
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root, own_cgroup)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, own_cgroup: Path = PROC_SELF_CGROUP) -> float | None:
    """The CPU quota in CPUs (quota ÷ period), or None when there is none or it cannot be read.

    cgroup v2: ``cpu.max`` ("max 100000" or "150000 100000") of the process's own cgroup (the
    path after ``0::`` in /proc/self/cgroup; "/" inside a container's cgroup namespace), else
    at the root. cgroup v1: ``cpu.cfs_quota_us`` (-1: none) and ``cpu.cfs_period_us``."""
    for directory in _v2_directories(root, own_cgroup):
        try:
            quota, period = (directory / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            continue
        return None if quota == "max" else _ratio(quota, period)
    for controller in ("cpu", "cpu,cpuacct"):
        try:
            quota = (root / controller / "cpu.cfs_quota_us").read_text().strip()
            period = (root / controller / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            continue
        return None if quota.startswith("-") else _ratio(quota, period)
    return None


def _v2_directories(root: Path, own_cgroup: Path) -> list[Path]:
    directories = []
    try:
        for line in own_cgroup.read_text().splitlines():
            if line.startswith("0::"):
                relative = line[3:].strip().lstrip("/")
                if relative:
                    directories.append(root / relative)
    except OSError:
        pass
    directories.append(root)
    return directories


def _ratio(quota: str, period: str) -> float | None:
    try:
        value = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None
