"""CPU time and memory of a process tree, read from /proc.

The gateway's cost per request is the CPU its master and workers burn while a
load point runs, divided by the requests wrk completed. /proc/<pid>/stat gives
utime+stime in clock ticks (usually 10 ms), which is why a point should last a
few seconds: at 2 s the resolution is still better than 1 %.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's list), e.g. gunicorn's workers."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            text = (task / "children").read_text()
        except OSError:
            continue
        found.extend(int(child) for child in text.split())
    return sorted(set(found))


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process (all its threads), in clock ticks; 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), 0-based after pid and comm


def thread_schedstat(pid: int, field: int) -> dict[int, int]:
    """One field of /proc/<pid>/task/*/schedstat by thread id: 0, ns on a CPU (finer than the
    clock ticks); 1, ns runnable but waiting; 2, times put on a CPU. Empty once the process is
    gone."""
    values: dict[int, int] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            values[int(task.name)] = int((task / "schedstat").read_text().split()[field])
        except (OSError, IndexError, ValueError):
            continue
    return values


def schedstat_sum(pid: int, field: int) -> int:
    """``thread_schedstat`` summed over the process's threads; 0 once it is gone."""
    return sum(thread_schedstat(pid, field).values())


def thread_runs(pid: int) -> dict[int, int]:
    """How many times each thread of one process was put on a CPU, by thread id: nearly every
    run but the first of a burst is a wake-up from a wait (what one costs depends on the code
    and data it walks through: bench/README.md, round 12)."""
    return thread_schedstat(pid, 2)


def thread_delta(before: dict[int, int], after: dict[int, int]) -> int:
    """A per-thread count (runs, ns on a CPU) of the threads alive at ``after``, since ``before`` (a thread started
    in between counts from 0). A thread that ended in between is not counted: summing the live
    threads' totals instead read negative when one ended (bench/README.md, round 13)."""
    return sum(count - before.get(tid, 0) for tid, count in after.items())


def rss_bytes(pid: int) -> int:
    """Resident set size of one process; 0 once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


@dataclass(frozen=True)
class TreeSample:
    """One reading of a master and its workers."""

    master: int
    workers: tuple[int, ...]
    ticks: int
    worker_rss: tuple[int, ...]
    runs: dict[int, int] = field(default_factory=dict)  # each thread's runs on a CPU (``thread_runs``)
    on_cpu_ns: dict[int, int] = field(default_factory=dict)  # each thread's ns on a CPU (schedstat)

    @property
    def rss_per_worker_mib(self) -> float:
        return sum(self.worker_rss) / len(self.worker_rss) / 2**20 if self.worker_rss else 0.0


def sample_tree(master: int) -> TreeSample:
    workers = tuple(children(master))
    ticks = cpu_ticks(master) + sum(cpu_ticks(pid) for pid in workers)
    runs = {tid: count for pid in (master, *workers) for tid, count in thread_runs(pid).items()}
    on_cpu = {tid: ns for pid in (master, *workers) for tid, ns in thread_schedstat(pid, 0).items()}
    return TreeSample(master, workers, ticks, tuple(rss_bytes(pid) for pid in workers), runs, on_cpu)


def sample_pids(pids: list[int]) -> int:
    """Summed CPU ticks of unrelated processes (the load side: wrk, the simulator)."""
    return sum(cpu_ticks(pid) for pid in pids)


def ticks_to_ms(ticks: int) -> float:
    return ticks * 1000 / TICKS_PER_S


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


@dataclass(frozen=True)
class CoreSample:
    """Summed /proc/stat counters of some CPUs, in clock ticks."""

    busy: int  # user + nice + system + irq + softirq
    steal: int  # time the hypervisor gave our vCPU to someone else
    total: int


def sample_cores(cpus: list[int] | None) -> CoreSample:
    """Counters of ``cpus`` (None: the whole machine) — to see who else used the measured core."""
    busy = steal = total = 0
    wanted = {f"cpu{cpu}" for cpu in cpus} if cpus is not None else {"cpu"}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name not in wanted:
            continue
        user, nice, system, idle, iowait, irq, softirq, stolen = (int(v) for v in values[:8])
        busy += user + nice + system + irq + softirq
        steal += stolen
        total += user + nice + system + idle + iowait + irq + softirq + stolen
    return CoreSample(busy, steal, total)
