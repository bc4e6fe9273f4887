"""A small private network of Linux network namespaces, made and removed by a test.

One namespace (``lb``) holds a bridge with the address ``.1``; every other namespace gets
one veth end on that bridge and its own address, like hosts on a LAN. No interface,
address or route is added to the machine's own namespace: traffic stays inside these.
A thread enters a namespace with ``entered(name)`` (setns(2) applies per thread; threads
and processes it starts inherit it). Needs root.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


@contextmanager
def entered(name: str) -> Iterator[None]:
    """The calling thread inside namespace ``name`` until the block ends."""
    original = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    target = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(target)
        yield
    finally:
        _setns(original)
        os.close(target)
        os.close(original)


@dataclass
class PrivateLan:
    prefix: str  # namespace names are <prefix>-<host>
    subnet: str  # the first three octets, e.g. "10.216.7"
    hosts: Mapping[str, int]  # host name -> last octet (not 1: the bridge's)
    made: list[str] = field(default_factory=list)

    def name(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def address(self, host: str) -> str:
        return f"{self.subnet}.{1 if host == 'lb' else self.hosts[host]}"

    def create(self) -> None:
        self.remove()  # what a killed run left behind
        lb = self.name("lb")
        _ip("netns", "add", lb)
        self.made.append(lb)
        _ip("-n", lb, "link", "set", "lo", "up")
        _ip("-n", lb, "link", "add", "br0", "type", "bridge")
        _ip("-n", lb, "addr", "add", f"{self.subnet}.1/24", "dev", "br0")
        _ip("-n", lb, "link", "set", "br0", "up")
        for host, octet in self.hosts.items():
            ns = self.name(host)
            _ip("netns", "add", ns)
            self.made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", lb, "link", "add", f"v-{host}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", lb, "link", "set", f"v-{host}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{self.subnet}.{octet}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def remove(self) -> None:
        for host in ["lb", *self.hosts]:
            subprocess.run(["ip", "netns", "del", self.name(host)], capture_output=True)
        self.made.clear()

    def exec_prefix(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.name(host)]
