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
import socket
import ssl
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_HEAD_BYTES = 64 * 1024  # http.client's own limits: 65,536 per line, 100 lines
RECV_BYTES = 64 * 1024

_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([2-9][0-9][0-9])(?: [^\r\n]*)?")
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PLAIN_HEADERS = re.compile(rb"(?:" + _TOKEN + rb":[^\r\n]*\r\n)*")
_HEADER = re.compile(rb"(" + _TOKEN + rb"):[ \t]*([^\r\n]*)")  # leading blanks dropped, as http.client does
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]+)[ \t]*(?=\r\n|$)|\r\ncontent-length:")
_CONNECTION_CLOSE = re.compile(rb"\r\nconnection:[^\r\n]*close")
_NO_BODY_STATUSES = frozenset({204, 304})
# SO_TIMESTAMPNS (the stdlib does not name it): received data carries its arrival time.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else None)
_TIMESPEC = struct.Struct("@qq")  # struct timespec on 64-bit Linux
_STAMP_SPACE = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
LATE_READ_GRACE_S = 0.05  # to read the rest of a head found waiting when the timer fired


class HeadTooLarge(Exception):
    """No end of the header block within ``MAX_HEAD_BYTES``."""


class ClosedEarly(Exception):
    """The peer closed the connection before the whole head or body arrived."""


@dataclass(frozen=True, slots=True)
class Head:
    status: int
    headers: list[tuple[bytes, bytes]]
    content_length: int
    will_close: bool
    rest: bytes  # body bytes that arrived with the head
    answered_in_time: bool | None = None  # whole answer stamped on arrival before the deadline (None: not known)


@dataclass(frozen=True, slots=True)
class Unusual:
    """Not the common shape: ``data`` is everything read so far, head included."""

    data: bytes


def read_head(
    sock: Any, deadline: float, *, head_request: bool = False, stamped: bool = False, hedge: Any = None
) -> Head | Unusual:
    """Receive until the end of the header block and parse it (socket timeout: time left).

    ``stamped``: the socket has arrival stamps on (``enable_arrival_stamps``). Then an
    answer that had *wholly* reached this host before ``deadline`` — head and body,
    by the kernel's stamp on every read — is read although this process only got to
    it later (its CPU was busy), and the head's ``answered_in_time`` says so; after
    the attempt's timer fired with such bytes waiting, the rest of the head gets
    ``LATE_READ_GRACE_S`` to be read, and counts only if it too had arrived in time.
    The contract's rule stands: the timeout bounds the attempt to the last byte.
    Without stamps an answer read after the deadline is a timeout, as before.

    ``hedge``: a hedged first attempt's token (``resilience.hedge``); the first wait for the
    answer ends at its ``hedge_at``, and if nothing came by then its ``hedge_due`` starts the
    hedge and the read goes on until the deadline (a wait in the socket, not a timer per call)."""
    data = b""
    latest: float | None = None  # the latest arrival stamp of the bytes read
    stamps_complete = stamped
    budget_end = deadline
    while True:
        if hedge is None:
            sock.settimeout(time_left(budget_end))
        else:
            hedge_at = hedge.hedge_at  # (no ``min``: a call less on every hedged attempt)
            sock.settimeout(time_left(budget_end if hedge_at is None or budget_end < hedge_at else hedge_at))
        try:
            chunk, arrived = _receive(sock, stamped)
        except (TimeoutError, ssl.SSLError) as error:
            if hedge is not None and _hedge_due(hedge, error, budget_end):
                hedge = None
                continue  # the hedge is on its way: go on waiting for this answer
            if not isinstance(error, TimeoutError):
                raise
            waiting = _waiting_in_time(sock, deadline) if stamped else None
            if waiting is None:
                raise
            chunk, arrived = waiting
            budget_end = time.monotonic() + LATE_READ_GRACE_S
            sock.settimeout(LATE_READ_GRACE_S)  # for http.client too, should the answer be unusual
        hedge = None  # the answer is coming: no hedge for its rest
        if chunk:
            if arrived is None:
                stamps_complete = False
            else:
                latest = arrived if latest is None else max(latest, arrived)
        if not chunk:
            if data:
                return Unusual(data)  # http.client reports a truncated head its own way
            raise ClosedEarly("remote end closed connection without response")
        data += chunk
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            in_time = latest <= deadline if stamps_complete and latest is not None else None
            head = _parse(data[:end], data[end + 4 :], in_time) if not head_request else None
            return head if head is not None else Unusual(data)
        if b"\n\n" in data or b"\n\r\n" in data:
            return Unusual(data)  # bare-LF line ends: http.client's rules
        if len(data) > MAX_HEAD_BYTES:
            raise HeadTooLarge(f"no end of headers within {MAX_HEAD_BYTES} bytes")


def _hedge_due(hedge: Any, error: OSError, budget_end: float) -> bool:
    """A wait that ended at the hedge's ``hedge_at`` (not the deadline): the hedge is started.
    A TLS socket under gevent says "timed out" by an ``SSLError``."""
    hedge_at = hedge.hedge_at
    if hedge_at is None or hedge_at >= budget_end:
        return False
    if not (isinstance(error, TimeoutError) or "timed out" in str(error)):
        return False
    hedge.hedge_due()
    return True


def enable_arrival_stamps(sock: Any) -> bool:
    """Ask the kernel to stamp received data with its arrival time (Linux, plain TCP)."""
    if _SO_TIMESTAMPNS is None or not hasattr(sock, "recvmsg"):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def _receive(sock: Any, stamped: bool) -> tuple[bytes, float | None]:
    if not stamped:
        return sock.recv(RECV_BYTES), None
    data, ancillary, _, _ = sock.recvmsg(RECV_BYTES, _STAMP_SPACE)
    return data, _arrival(ancillary)


def _waiting_in_time(sock: Any, deadline: float) -> tuple[bytes, float | None] | None:
    """After a socket timeout: bytes that were already waiting and had arrived by the
    deadline (the timer and the data became ready together while the CPU was busy)."""
    try:
        sock.settimeout(0.0)
        chunk, arrived = _receive(sock, True)
    except OSError:  # nothing waiting (BlockingIOError) or the connection failed
        return None
    if not chunk or arrived is None or arrived > deadline:
        return None
    return chunk, arrived


def _arrival(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's arrival stamp (wall clock) on the monotonic clock deadlines use."""
    for level, kind, raw in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(raw) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(raw)
            return float(seconds + nanoseconds / 1e9 - time.time() + time.monotonic())
    return None


def _parse(block: bytes, rest: bytes, answered_in_time: bool | None = None) -> Head | None:
    """The head of a common-shape answer, or None for http.client to read. Whole-block
    regular expressions instead of a loop over lines: a wrongly suspected header (say
    ``transfer-encoding:`` inside another header's value) only costs a fallback."""
    status_line, _, lines = block.partition(b"\r\n")
    status = _STATUS_LINE.fullmatch(status_line)
    if status is None or int(status.group(1)) in _NO_BODY_STATUSES:
        return None
    if lines and not _PLAIN_HEADERS.fullmatch(lines + b"\r\n"):
        return None  # folded, bare CR/LF, odd names
    lowered = b"\r\n" + lines.lower()
    if b"\r\ntransfer-encoding:" in lowered:
        return None
    lengths = _CONTENT_LENGTH.findall(lowered)
    if len(lengths) != 1 or not lengths[0]:
        return None  # none, several, or not a number
    length = int(lengths[0])
    return Head(
        int(status.group(1)),
        _HEADER.findall(lines),
        length,
        _CONNECTION_CLOSE.search(lowered) is not None,
        rest,
        answered_in_time if len(rest) >= length else None,  # only a whole answer is judged by its stamps
    )


class LengthBody:
    """The body of a ``Head``: the bytes that came with it, then reads to Content-Length.
    ``complete`` tells whether the connection may carry another exchange."""

    def __init__(self, sock: Any, head: Head, deadline: float, chunk_bytes: int) -> None:
        self._sock = sock
        self._head = head
        self._deadline = deadline
        self._chunk_bytes = chunk_bytes
        self.complete = False

    def buffered(self) -> bytes | None:
        """The whole body when exactly it came with the head (then no read is needed and
        ``complete`` is set), else None: iterate."""
        head = self._head
        if len(head.rest) != head.content_length:
            return None
        self.complete = not head.will_close
        return head.rest

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
            self._sock.settimeout(time_left(self._deadline, strict=True))
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


def time_left(deadline: float, *, strict: bool = False) -> float:
    """Seconds to ``deadline`` as a socket timeout (at least 1 ms; ``strict``: BudgetSpent once past)."""
    left = deadline - time.monotonic()
    if strict and left <= 0:
        raise BudgetSpent("attempt budget spent while reading the body")
    return max(0.001, left)
