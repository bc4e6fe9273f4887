"""bench/wakes.py names each wake-up of a worker by the first socket it reads after it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import wakes

TRACE = """\
         swapper     0 [001]   10.000100:            sched:sched_wakeup: comm=gunicorn pid=41 prio=120 target_cpu=001
        gunicorn    41 [001]   10.000200:   syscalls:sys_enter_recvfrom: fd: 0x00000007, ubuf: 0x1, size: 0x2000
        gunicorn    41 [001]   10.000300:   syscalls:sys_enter_recvfrom: fd: 0x00000008, ubuf: 0x1, size: 0x2000
         swapper     0 [001]   10.001000:            sched:sched_wakeup: comm=gunicorn pid=41 prio=120 target_cpu=001
        gunicorn    41 [001]   10.001100:    syscalls:sys_enter_recvmsg: fd: 0x00000009, msg: 0x1, flags: 0x0
         swapper     0 [001]   10.002000:            sched:sched_wakeup: comm=gunicorn pid=41 prio=120 target_cpu=001
        gunicorn    41 [001]   10.002100: syscalls:sys_enter_epoll_wait: epfd: 0x00000003, timeout: 0x64
         swapper     0 [001]   10.003000:            sched:sched_wakeup: comm=gunicorn pid=42 prio=120 target_cpu=001
        gunicorn    42 [001]   10.003100:   syscalls:sys_enter_recvfrom: fd: 0x00000007, ubuf: 0x1, size: 0x2000
         swapper     0 [001]   10.004000:            sched:sched_wakeup: comm=python pid=77 prio=120 target_cpu=000
          python    77 [000]   10.004100:   syscalls:sys_enter_recvfrom: fd: 0x00000007, ubuf: 0x1, size: 0x2000
"""


def test_each_wake_up_is_named_by_its_first_read_and_other_processes_are_left_out() -> None:
    table = {
        ("41", "7"): ("8000", "51000"),  # a client of the server's port
        ("41", "8"): ("51001", "6379"),
        ("41", "9"): ("51002", "9103"),
        ("42", "7"): ("51003", "6379"),
        ("42", "5"): ("8000", "51004"),
    }
    kinds = wakes.classify(TRACE.splitlines(), {"41", "42"}, table)
    assert kinds == {
        "a client's request": 1,  # the second read of that wake-up does not count
        "a downstream on port 9103": 1,
        "timer (no read before the next wait)": 1,
        "Redis": 1,
    }
