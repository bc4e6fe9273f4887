"""Reading one HTTP/1.1 response off a socket, the common case without http.client.

Most downstream answers look the same: ``HTTP/1.1 2xx``, plain ``name: value``
header lines, a ``Content-Length`` body. For those, ``read_head`` takes the
status line and headers from one or two ``recv`` calls and ``LengthBody``
yields the body from what is already buffered plus the rest of the
Content-Length, with no ``makefile``/``BufferedReader``, ``readline`` per
header or ``email.message.Message`` per response (http.client's way, measured
in bench/README.md).

Anything else — HTTP/1.0, 1xx/204/304, chunked or close-delimited bodies,
folded or odd header lines, a duplicated Content-Length, bare LF line ends —
is handed back as ``Unusual`` with the bytes already read, and the caller lets
``http.client`` read the whole response from them (``PrefixedSocket``), so
such answers are read exactly as before.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_HEAD_BYTES = 64 * 1024  # http.client's own limits: 65,536 per line, 100 lines
RECV_BYTES = 64 * 1024

_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([2-9][0-9][0-9])(?: [^\r\n]*)?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NO_BODY_STATUSES = frozenset({204, 304})


class HeadTooLarge(Exception):
    """No end of the header block within ``MAX_HEAD_BYTES``."""


class ClosedEarly(Exception):
    """The peer closed the connection before the whole head or body arrived."""


@dataclass(frozen=True, slots=True)
class Head:
    status: int
    headers: list[tuple[str, str]]
    content_length: int
    will_close: bool
    rest: bytes  # body bytes that arrived with the head


@dataclass(frozen=True, slots=True)
class Unusual:
    """Not the common shape: ``data`` is everything read so far, head included."""

    data: bytes


def read_head(sock: Any, deadline: float, *, head_request: bool = False) -> Head | Unusual:
    """Receive until the end of the header block and parse it (socket timeout: time left)."""
    data = b""
    while True:
        sock.settimeout(_left(deadline))
        chunk = sock.recv(RECV_BYTES)
        if not chunk:
            if data:
                return Unusual(data)  # http.client reports a truncated head its own way
            raise ClosedEarly("remote end closed connection without response")
        data += chunk
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = _parse(data[:end], data[end + 4 :]) if not head_request else None
            return head if head is not None else Unusual(data)
        if b"\n\n" in data or b"\n\r\n" in data:
            return Unusual(data)  # bare-LF line ends: http.client's rules
        if len(data) > MAX_HEAD_BYTES:
            raise HeadTooLarge(f"no end of headers within {MAX_HEAD_BYTES} bytes")


def _parse(block: bytes, rest: bytes) -> Head | None:
    lines = block.split(b"\r\n")
    status_line = _STATUS_LINE.fullmatch(lines[0])
    if status_line is None:
        return None
    status = int(status_line.group(1))
    if status in _NO_BODY_STATUSES:
        return None
    headers: list[tuple[str, str]] = []
    length: int | None = None
    will_close = False
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or b"\n" in line or b"\r" in line or not _TOKEN.fullmatch(name):
            return None  # folded, bare CR/LF, odd names
        value = value.lstrip(b" \t")  # as http.client keeps it: leading blanks dropped
        lower = name.lower()
        if lower == b"content-length":
            if length is not None or not value.strip().isdigit():
                return None
            length = int(value)
        elif lower == b"transfer-encoding":
            return None
        elif lower == b"connection" and b"close" in value.lower():
            will_close = True
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    if length is None:
        return None
    return Head(status, headers, length, will_close, rest)


class LengthBody:
    """The body of a ``Head``: the bytes that came with it, then reads to Content-Length.
    ``complete`` tells whether the connection may carry another exchange."""

    def __init__(self, sock: Any, head: Head, deadline: float, chunk_bytes: int) -> None:
        self._sock = sock
        self._head = head
        self._deadline = deadline
        self._chunk_bytes = chunk_bytes
        self.complete = False

    def __iter__(self) -> Iterator[bytes]:
        head = self._head
        first = head.rest
        if len(first) > head.content_length:
            # more than the declared body: the surplus would corrupt the next answer
            yield first[: head.content_length]
            return
        remaining = head.content_length - len(first)
        if first:
            yield first
        while remaining > 0:
            self._sock.settimeout(_left(self._deadline, strict=True))
            chunk = self._sock.recv(min(remaining, self._chunk_bytes))
            if not chunk:
                raise ClosedEarly(f"connection closed with {remaining} body bytes still to come")
            remaining -= len(chunk)
            yield chunk
        self.complete = not head.will_close


class PrefixedSocket:
    """A socket whose first reads return bytes already received: lets ``http.client``
    read an ``Unusual`` response from the start."""

    def __init__(self, sock: Any, prefix: bytes) -> None:
        self._sock = sock
        self._prefix = prefix

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        return io.BufferedReader(_PrefixedRaw(self._sock, self._prefix))


class _PrefixedRaw(io.RawIOBase):
    def __init__(self, sock: Any, prefix: bytes) -> None:
        self._sock = sock
        self._prefix = memoryview(prefix)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            size = min(len(buffer), len(self._prefix))
            buffer[:size] = self._prefix[:size]
            self._prefix = self._prefix[size:]
            return size
        return int(self._sock.recv_into(buffer))


class BudgetSpent(TimeoutError):
    """The attempt's whole time budget ran out between reads."""


def _left(deadline: float, *, strict: bool = False) -> float:
    left = deadline - time.monotonic()
    if strict and left <= 0:
        raise BudgetSpent("attempt budget spent while reading the body")
    return max(0.001, left)
