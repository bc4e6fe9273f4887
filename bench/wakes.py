#!/usr/bin/env python
"""What wakes a server's workers: each wake-up classified by the first socket it reads.

    python bench/wakes.py --master PID [--seconds 8]     # while bench/run.py (or any load) runs

Records the kernel's ``sched:sched_wakeup`` of the workers (children of the gunicorn master
``PID``) with the system calls that follow each (``perf record``, tracepoints only: the
workers run at full speed, unlike under ``strace``), then names each wake-up by what the
worker did first after it: read a client connection, Redis, a downstream (by its port), or
nothing before its next ``epoll_wait`` (a timer). Needs root and Debian's ``linux-perf``.
bench/README.md, round 15.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from procstat import children

EVENTS = (
    "sched:sched_wakeup",
    "syscalls:sys_enter_epoll_wait",
    "syscalls:sys_enter_recvfrom",
    "syscalls:sys_enter_recvmsg",
    "syscalls:sys_enter_read",
    "syscalls:sys_enter_accept4",
)
LINE = re.compile(r"\s*\S+\s+(?P<tid>\d+)\s+\[\d+\]\s+[\d.]+:\s+(?P<event>\S+):\s+(?P<rest>.*)")
SOCKET = re.compile(
    r"\s(?P<local>\S+):(?P<lport>\d+)\s+(?P<peer>\S+):(?P<pport>\d+)\s.*pid=(?P<pid>\d+),fd=(?P<fd>\d+)"
)
Sockets = dict[tuple[str, str], tuple[str, str]]  # (pid, fd) → (local port, peer port)


def sockets(pids: set[str]) -> Sockets:
    """(pid, fd) → (local port, peer port) of every TCP socket of ``pids`` (``ss -tnp``)."""
    table: Sockets = {}
    for line in subprocess.run(["ss", "-tnp"], capture_output=True, text=True, check=True).stdout.splitlines():
        for match in SOCKET.finditer(line):
            if match["pid"] in pids:
                table[(match["pid"], match["fd"])] = (match["lport"], match["pport"])
    return table


def classify(trace: Iterable[str], workers: set[str], table: Sockets) -> collections.Counter[str]:
    """Each wake-up of a worker, named by its first read (``perf script`` lines)."""
    served = collections.Counter(local for local, _peer in table.values())
    listen_port = served.most_common(1)[0][0] if served else ""
    woken: set[str] = set()
    kinds: collections.Counter[str] = collections.Counter()
    for line in trace:
        match = LINE.match(line)
        if match is None:
            continue
        tid, event, rest = match["tid"], match["event"], match["rest"]
        if event == "sched:sched_wakeup":
            target = re.search(r"pid=(\d+)", rest)
            if target and target.group(1) in workers:
                woken.add(target.group(1))
            continue
        if tid not in woken:
            continue
        woken.discard(tid)
        if event.endswith("epoll_wait"):
            kinds["timer (no read before the next wait)"] += 1
        elif event.endswith("accept4"):
            kinds["a new client connection"] += 1
        else:
            fd = re.search(r"fd: (0x[0-9a-f]+|\d+)", rest)
            kinds[_name(table.get((tid, str(int(fd.group(1), 0)) if fd else "?")), listen_port)] += 1
    return kinds


def _name(ports: tuple[str, str] | None, listen_port: str) -> str:
    if ports is None:
        return "another descriptor (a file, a pipe, a socket closed since)"
    local, peer = ports
    if local == listen_port:
        return "a client's request"
    if peer == "6379":
        return "Redis"
    return f"a downstream on port {peer}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", type=int, required=True, help="the gunicorn master's pid")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    if shutil.which("perf") is None:
        parser.error("perf is not installed (apt-get install -y linux-perf)")
    workers = {str(pid) for pid in children(args.master)}
    if not workers:
        parser.error(f"no workers under pid {args.master}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "wakes.data"
        record = ["perf", "record", "-q", "-a", "-o", str(data)]
        for event in EVENTS:
            record += ["-e", event]
        subprocess.run([*record, "--", "sleep", str(args.seconds)], check=True, capture_output=True)
        table = sockets(workers)
        script = subprocess.run(["perf", "script", "-i", str(data)], capture_output=True, text=True, check=True)
    kinds = classify(script.stdout.splitlines(), workers, table)
    total = sum(kinds.values())
    if not total:  # perf recorded nothing of theirs (not root, tracepoints off): no table to divide
        print(f"no wake-up of the {len(workers)} worker(s) recorded in {args.seconds:g} s (perf needs root)")
        return 1
    print(f"{total} wake-ups of {len(workers)} worker(s) in {args.seconds:g} s")
    for kind, count in kinds.most_common():
        print(f"{count:7d}  {count * 100 / total:5.1f} %  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
