"""An ``httpx.BaseTransport`` over urllib3's connection pools.

httpx keeps its client API for us; underneath, httpcore's pool was measured
5-20x more expensive under gevent (its work grows with the square of the
connections per client; ARCHITECTURE.md), so this transport hands requests to
urllib3 instead. Third-party errors are translated to httpx's here, at one
boundary.

The attempt's time budget is the smallest timeout httpx passes in
(``request.extensions["timeout"]``) and bounds the whole exchange, from
connect to the last byte: connect and header reads get the time left, and the
body is read chunk by chunk with the socket timeout set to the time left
before each read, so a slowly dripping body is cut at the budget. This works
the same in plain threads and under gevent (patched sockets honour timeouts).

Two costs of urllib3 under gevent are trimmed, with the same results:

* a pooled connection is checked for a dropped peer before reuse with one
  non-blocking ``poll`` of the real (unpatched) ``select`` module, instead of
  gevent's cooperative poll, which sets up watchers and goes through the hub
  for a zero-timeout check;
* response headers are split by a plain loop when every line is a simple
  ``name: value`` (the usual case), and by the standard library's email parser
  otherwise, giving the same ``http.client.HTTPMessage`` either way (the email
  parser was 5 % of a request's CPU).

And the exchange itself skips urllib3's request and response layers when they
would add nothing (``_request_head``: the request carries Host,
Accept-Encoding, User-Agent and its framing, as every ``DownstreamClient``
request does): the same head bytes are written with one ``sendall`` on the
pooled connection, ``http1`` reads a common-shape answer (2xx-5xx, plain
headers, Content-Length) straight off the socket and ``http.client`` any other
(chunked, HTTP/1.0, 1xx...), and the connection goes back to the pool when
the body was read to its end and the server keeps it open. Any other request
goes through ``urlopen`` as before; errors map to the same httpx errors.
"""

from __future__ import annotations

import email.parser
import errno
import http.client
import re
import select
import socket
import ssl
import time
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import httpx
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.response import BaseHTTPResponse

from orchestration.downstream import http1

CHUNK_BYTES = 64 * 1024
# Response extension: True when the whole answer (head and body) arrived before the
# attempt's deadline by the kernel's stamps, False when not, absent when unknown (TLS,
# http.client's fallback, a body still to come after the head).
ANSWERED_IN_TIME = "gateway.answered_in_time"
# Request extension: a ``resilience.hedge.AttemptCancel`` the exchange binds its socket to, so
# a hedge's loser is stopped from outside; a cancelled exchange's connection is never reused.
# A hedged first attempt's token also has a ``hedge_at``: the exchange waits for the answer's
# first bytes until then and calls its ``hedge_due`` (``http1.read_head``), or its ``waiting``
# before any other wait (connecting, urllib3's own path), so no timer is armed per call.
ATTEMPT_CANCEL = "gateway.attempt_cancel"
_MAX_POOLS = 8  # origins per transport (one service: one origin)
DEFAULT_BUDGET_S = 5.0


_TOKEN = re.compile(r"[\041-\071\073-\176]+")  # a header name the email parser takes as is


def _parse_headers(fp: BinaryIO, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage) -> Any:
    """``http.client.parse_headers`` with a fast path for plain ``name: value`` lines."""
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]  # same limits as the standard library
    message = _class()
    for raw in lines:
        if raw in (b"\r\n", b"\n", b""):
            break
        line = raw.decode("iso-8859-1")
        name, colon, value = line.partition(":")
        body = line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith("\n") else None
        if not colon or body is None or "\r" in body or not _TOKEN.fullmatch(name):
            # folded, bare CR, odd names...: exactly what the standard library does
            return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))
        message.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))
    message.set_payload("")  # as the email parser leaves it: headers only, empty body
    return message


def _begin_with_fast_headers() -> Callable[..., None]:
    """``http.client.HTTPResponse.begin`` itself, reading headers with ``_parse_headers``."""
    begin = http.client.HTTPResponse.begin
    scope = {**vars(http.client), "parse_headers": _parse_headers}
    function = types.FunctionType(begin.__code__, scope, begin.__name__, begin.__defaults__, begin.__closure__)
    function.__kwdefaults__ = begin.__kwdefaults__
    return function


class _Response(http.client.HTTPResponse):
    begin = _begin_with_fast_headers()


def _original_poll() -> Callable[[], Any] | None:
    """The real ``select.poll`` even when gevent has patched ``select``."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return getattr(select, "poll", None)
    return monkey.get_original("select", "poll") if hasattr(select, "poll") else None


_POLL = _original_poll()


def _readable_now(sock: Any) -> bool:
    """True when the peer closed (or sent unasked-for bytes): never blocks or yields."""
    if _POLL is None:  # pragma: no cover - every Linux has poll
        from urllib3.util.wait import wait_for_read

        return bool(wait_for_read(sock, timeout=0.0))
    poller = _POLL()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


COALESCE_MAX_BYTES = 64 * 1024


class _Coalescing:
    """Sends a small request body in the same ``send`` as the header block: http.client
    and urllib3 send them apart, one more system call (and wake-up of the peer) per
    POST for the same bytes on the wire."""

    _body_with_headers: bytes | None = None

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, **options: Any) -> None:
        if (
            isinstance(body, bytes)
            and 0 < len(body) <= COALESCE_MAX_BYTES
            and not options.get("chunked")
            and headers is not None
            and any(name.lower() == "content-length" for name in headers)
        ):
            self._body_with_headers = body
            try:
                super().request(method, url, body=None, headers=headers, **options)  # type: ignore[misc]
            finally:
                self._body_with_headers = None
            return
        super().request(method, url, body=body, headers=headers, **options)  # type: ignore[misc]

    def send(self, data: Any) -> None:
        body = self._body_with_headers
        if body is not None and isinstance(data, bytes):
            self._body_with_headers = None
            data += body
        super().send(data)  # type: ignore[misc]

    @property
    def is_connected(self) -> bool:
        sock = getattr(self, "sock", None)
        if sock is None:
            return False
        return not _readable_now(sock)


class _Connection(_Coalescing, HTTPConnection):
    response_class = _Response


class _TLSConnection(_Coalescing, HTTPSConnection):
    response_class = _Response


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


class Urllib3Transport(httpx.BaseTransport):
    # Notices a hedged attempt's ``hedge_at`` itself (``ATTEMPT_CANCEL``): ``DownstreamClient``
    # tells ``resilience.hedge.Hedged`` so, and no timer is armed for a call answered in time.
    arms_hedge = True

    def __init__(
        self,
        *,
        maxsize: int = 10,
        cert_file: str | None = None,
        key_file: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        tls: dict[str, Any] = {}
        if cert_file is not None:
            tls.update(cert_file=cert_file, key_file=key_file)
        if ca_file is not None:
            tls.update(ca_certs=ca_file, cert_reqs="CERT_REQUIRED")
        self._pools = urllib3.PoolManager(num_pools=_MAX_POOLS, maxsize=maxsize, block=False, retries=False, **tls)
        self._pools.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}
        self._by_origin: dict[tuple[str, str, int | None], HTTPConnectionPool] = {}

    def _pool(self, url: httpx.URL) -> HTTPConnectionPool:
        return self._pool_of((url.scheme, url.host, url.port))

    def _pool_of(self, origin: tuple[str, str, int | None]) -> HTTPConnectionPool:
        """The origin's pool, by a plain dict lookup: urllib3 normalises a pool key on
        every ``connection_from_host`` (1.4 % of a request's CPU). A transport serves one
        service, so one origin in practice; the PoolManager never evicts below its size."""
        pool = self._by_origin.get(origin)
        if pool is None:
            if len(self._by_origin) >= _MAX_POOLS:
                self._by_origin.clear()
            scheme, host, port = origin
            pool = self._by_origin[origin] = self._pools.connection_from_host(host, port, scheme=scheme)
        return pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + _budget_s(request)
        url = request.url
        pool = self._pool(url)
        body = request.read() or None
        head = _request_head(request, body)
        if head is not None:
            cancel = request.extensions.get(ATTEMPT_CANCEL)
            answer = _exchange(pool, head, body, deadline, request.method == "HEAD", cancel, request)
            extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
            if answer.answered_in_time is not None:
                extensions[ANSWERED_IN_TIME] = answer.answered_in_time
            return httpx.Response(
                answer.status, headers=answer.headers, stream=answer.stream, request=request, extensions=extensions
            )
        cancel = request.extensions.get(ATTEMPT_CANCEL)
        if cancel is not None:
            cancel.waiting()  # urllib3 reads this answer: a hedge needs its timer
        headers = urllib3.HTTPHeaderDict()
        for name, value in request.headers.multi_items():
            headers.add(name, value)
        left = http1.time_left(deadline)
        try:
            response = pool.urlopen(
                request.method,
                url.raw_path.decode("ascii"),
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=urllib3.Timeout(connect=left, read=left),
                preload_content=False,
                decode_content=False,
            )
        except HTTPError as error:
            raise _translate(error, request) from error
        return httpx.Response(
            response.status,
            headers=list(response.headers.items()),
            stream=_DeadlineStream(response, deadline, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    def lean_exchange(
        self,
        origin: tuple[str, str, int | None],
        head: bytes,
        body: bytes | None,
        budget_s: float,
        cancel: Any,
        head_request: bool,
    ) -> Answer:
        """The lean lane (``DownstreamClient``): the exchange ``handle_request`` makes for a
        request whose head ``_request_head`` would write as ``head``, without the
        ``httpx.Request`` and ``httpx.Response`` around it; errors are the same httpx
        errors (with no request attached)."""
        deadline = time.monotonic() + budget_s
        return _exchange(self._pool_of(origin), head, body, deadline, head_request, cancel, None)

    def close(self) -> None:
        self._by_origin.clear()
        self._pools.clear()


class Answer:
    """One answer of ``_exchange``: status, raw header pairs, whether it arrived in time
    (``ANSWERED_IN_TIME``; None: not known) and its body stream, whose ``close`` gives the
    connection back (or closes it)."""

    __slots__ = ("answered_in_time", "headers", "status", "stream")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        answered_in_time: bool | None,
        stream: _LengthStream | _DirectStream,
    ) -> None:
        self.status = status
        self.headers = headers
        self.answered_in_time = answered_in_time
        self.stream = stream

    def header_values(self, lower_name: bytes) -> list[str]:
        """Every value of a header, decoded as ``httpx.Headers`` does for plain ASCII."""
        return [_decoded(value) for name, value in self.headers if name.lower() == lower_name]

    def raw_chunks(self) -> Iterable[bytes]:
        return self.stream.chunks()

    def close(self) -> None:
        self.stream.close()


def _decoded(value: bytes) -> str:
    if value.isascii():
        return value.decode("ascii")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("iso-8859-1")


class _DeadlineStream(httpx.SyncByteStream):
    """Yields the body while time is left; the connection is reused only if the
    body was read to its end."""

    def __init__(self, response: BaseHTTPResponse, deadline: float, request: httpx.Request) -> None:
        self._response = response
        self._deadline = deadline
        self._request = request
        self._complete = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            while True:
                self._set_socket_timeout(self._deadline - time.monotonic())
                chunk = self._response.read1(CHUNK_BYTES)
                if not chunk:
                    self._complete = True
                    return
                yield chunk
        except (HTTPError, OSError) as error:
            raise _translate(error, self._request) from error

    def _set_socket_timeout(self, seconds: float) -> None:
        if seconds <= 0:
            raise httpx.ReadTimeout("attempt budget spent while reading the body", request=self._request)
        connection = getattr(self._response, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            sock.settimeout(seconds)

    def close(self) -> None:
        if not self._complete:
            self._response.close()
        self._response.release_conn()


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # urllib3 frames these with a Content-Length even empty
_BAD_METHOD = re.compile(r"[^!#$%&'*+\-.^_`|~0-9a-zA-Z]")  # not an HTTP token (urllib3 / http.client refuse it)
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f]")
_LEGAL_NAMES = re.compile(rb"(?:[^:\s][^:\r\n]*\n)*[^:\s][^:\r\n]*").fullmatch  # http.client's, "\n"-joined
_BAD_VALUE_PATTERN = r"\n(?![ \t])|\r(?![ \t\n])"  # http.client's illegal header value
_BAD_VALUE = re.compile(_BAD_VALUE_PATTERN.encode()).search
bad_header_value = re.compile(_BAD_VALUE_PATTERN).search  # the same, on text (the lean lane checks before encoding)


def head_is_writable(method: str, target: bytes, lower_names: list[bytes]) -> bool:
    """Method, target and (lower-case) header names are ones http.client would write."""
    return not (
        _BAD_METHOD.search(method)
        or _BAD_TARGET.search(target)
        or not lower_names
        or not _LEGAL_NAMES(b"\n".join(lower_names))
    )


def _request_head(request: httpx.Request, body: bytes | None) -> bytes | None:
    """The exact bytes urllib3's ``HTTPConnection.request`` writes before the body, when
    it would add nothing of its own: the request carries Host, Accept-Encoding and
    User-Agent, and a Content-Length whenever urllib3 would frame the body. Anything
    else (or anything urllib3 would refuse) returns None and takes urllib3's path.
    Names and values are checked as whole joined blocks: one regular expression each
    instead of two per header."""
    method = request.method
    target = request.url.raw_path
    pairs = request.headers.raw
    names = [name.lower() for name, _ in pairs]  # lower case, as ``Headers.multi_items`` hands them to urllib3
    if not head_is_writable(method, target, names) or _BAD_VALUE(b"\0".join([value for _, value in pairs])):
        return None
    seen = set(names)
    if not {b"host", b"accept-encoding", b"user-agent"} <= seen or b"transfer-encoding" in seen:
        return None
    if b"content-length" not in seen and (body is not None or method.upper() in _BODY_METHODS):
        return None
    lines = [b"%s %s HTTP/1.1" % (method.encode("ascii"), target)]
    lines.extend([b"%s: %s" % (name, value) for name, (_, value) in zip(names, pairs, strict=True)])
    lines.append(b"\r\n")
    return b"\r\n".join(lines)


def _exchange(
    pool: HTTPConnectionPool,
    head: bytes,
    body: bytes | None,
    deadline: float,
    head_request: bool,
    cancel: Any,
    request: httpx.Request | None,
) -> Answer:
    """One HTTP/1.1 exchange on a pooled urllib3 connection, without urllib3's request
    and response layers: the head (and a small body) in one ``sendall``; a common-shape
    answer read by ``http1`` (its body by ``_LengthStream``), any other by ``http.client``
    (``_Response``, body by ``_DirectStream``) from the bytes already received. On plain
    TCP the kernel stamps arrivals, and the response's ``ANSWERED_IN_TIME`` extension
    tells whether the answer reached this host before the deadline even when this
    process read it later. Errors map to the same httpx errors as through ``urlopen``."""
    conn: Any = pool._get_conn()
    try:
        if conn.sock is None:
            if cancel is not None:
                cancel.waiting()  # a connect is no wait for the answer: a hedge needs its timer
            conn.timeout = http1.time_left(deadline)
            try:
                conn.connect()
            except HTTPError as error:
                raise _translate(error, request) from error
            except (ssl.SSLError, ssl.CertificateError) as error:
                raise httpx.ConnectError(str(error) or type(error).__name__, request=request) from error
            except (OSError, http.client.HTTPException) as error:
                raise _aborted(error, request) from error
            conn.arrival_stamps = not isinstance(conn, HTTPSConnection) and http1.enable_arrival_stamps(conn.sock)
        sock = conn.sock
        if cancel is not None and not cancel.bind(sock):
            raise httpx.ReadError("attempt cancelled before it was sent", request=request)
        try:
            sock.settimeout(http1.time_left(deadline))
            if body is None:
                _send_all(sock, head)
            elif len(body) <= COALESCE_MAX_BYTES:
                _send_all(sock, head + body)
            else:
                _send_all(sock, head)
                sock.sendall(body)
        except ssl.SSLError as error:
            raise httpx.ConnectError(str(error) or type(error).__name__, request=request) from error
        except (OSError, http.client.HTTPException) as error:
            raise _aborted(error, request) from error
        try:
            answer = http1.read_head(
                sock,
                deadline,
                head_request=head_request,
                stamped=getattr(conn, "arrival_stamps", False),
                hedge=cancel if cancel is not None and cancel.hedge_at is not None else None,
            )
        except (OSError, http1.ClosedEarly, http1.HeadTooLarge) as error:
            raise _read_error(error, request) from error
        if isinstance(answer, http1.Head):
            length_body = http1.LengthBody(sock, answer, deadline, CHUNK_BYTES)
            body_stream = _LengthStream(pool, conn, length_body, request, cancel)
            return Answer(answer.status, answer.headers, answer.answered_in_time, body_stream)
        method = "HEAD" if head_request else "GET"  # http.client only asks whether it was HEAD
        response = _Response(http1.PrefixedSocket(sock, answer.data), method=method)  # type: ignore[arg-type]
        try:
            response.begin()
        except (OSError, http.client.HTTPException) as error:
            response.close()
            raise _read_error(error, request) from error
    except BaseException:
        _give_back(pool, conn, reusable=False)
        raise
    headers = [(name.encode("iso-8859-1"), value.encode("iso-8859-1")) for name, value in response.msg.items()]
    return Answer(response.status, headers, None, _DirectStream(pool, conn, response, deadline, request, cancel))


def _send_all(sock: Any, data: bytes) -> None:
    """``sendall`` for a small request: one ``send`` takes it whole on a fresh or idle
    connection; gevent's ``sendall`` first asks the kernel for the buffer size (one more
    system call per request). The rest, if any, goes through ``sendall``."""
    sent = sock.send(data)
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])


class _LengthStream(httpx.SyncByteStream):
    """The body of a common-shape answer (``http1.LengthBody``); the connection goes
    back to the pool only if the body was read to its end and may be reused."""

    def __init__(
        self, pool: HTTPConnectionPool, conn: Any, body: http1.LengthBody, request: httpx.Request | None, cancel: Any
    ) -> None:
        self._pool: HTTPConnectionPool | None = pool
        self._conn = conn
        self._body = body
        self._request = request
        self._cancel = cancel

    def chunks(self) -> Iterable[bytes]:
        """The body: at once when it came with the head (the usual small answer), else as read."""
        whole = self._body.buffered()
        if whole is None:
            return self
        return (whole,) if whole else ()

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except http1.BudgetSpent as error:
            raise httpx.ReadTimeout(str(error), request=self._request) from error
        except (OSError, http1.ClosedEarly) as error:
            raise _read_error(error, self._request) from error

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            _give_back(pool, self._conn, reusable=self._body.complete and not _cancelled(self._cancel))


class _DirectStream(httpx.SyncByteStream):
    """``_DeadlineStream`` for ``_exchange``: the connection goes back to the pool only
    if the body was read to its end and the server keeps it open."""

    def __init__(
        self,
        pool: HTTPConnectionPool,
        conn: Any,
        response: http.client.HTTPResponse,
        deadline: float,
        request: httpx.Request | None,
        cancel: Any,
    ) -> None:
        self._pool: HTTPConnectionPool | None = pool
        self._conn = conn
        self._response = response
        self._deadline = deadline
        self._request = request
        self._cancel = cancel
        self._complete = False

    def chunks(self) -> Iterable[bytes]:
        return self

    def __iter__(self) -> Iterator[bytes]:
        response = self._response
        sock = self._conn.sock
        try:
            while True:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    raise httpx.ReadTimeout("attempt budget spent while reading the body", request=self._request)
                if sock is not None:
                    sock.settimeout(left)
                chunk = response.read1(CHUNK_BYTES)
                if not chunk:
                    self._complete = True
                    return
                yield chunk
        except (OSError, http.client.HTTPException) as error:
            raise _read_error(error, self._request) from error

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        reusable = self._complete and not self._response.will_close and not _cancelled(self._cancel)
        self._response.close()
        _give_back(pool, self._conn, reusable=reusable)


def _cancelled(cancel: Any) -> bool:
    return cancel is not None and bool(cancel.cancelled)


def _give_back(pool: HTTPConnectionPool, conn: Any, *, reusable: bool) -> None:
    """A connection back to its pool after an exchange; one that may not carry another
    (body not read to its end, peer closing, an error) is closed and its slot freed."""
    if reusable:
        pool._put_conn(conn)
    else:
        conn.close()
        pool._put_conn(None)


_BLOCKING_ERRNOS = {errno.EAGAIN, errno.EWOULDBLOCK}


def _aborted(error: BaseException, request: httpx.Request | None) -> httpx.TransportError:
    """What ``urlopen`` makes of an ``OSError`` or ``HTTPException``: "Connection aborted"."""
    return httpx.RemoteProtocolError(str(("Connection aborted.", error)), request=request)


def _read_error(error: BaseException, request: httpx.Request | None) -> httpx.TransportError:
    """A failed read of the status, headers or body, classified as urllib3 does."""
    if isinstance(error, (TimeoutError, socket.timeout)) or getattr(error, "errno", None) in _BLOCKING_ERRNOS:
        return httpx.ReadTimeout(f"Read timed out. ({error})", request=request)
    if isinstance(error, ssl.SSLError):
        if "timed out" in str(error):
            return httpx.ReadTimeout(f"Read timed out. ({error})", request=request)
        return httpx.ConnectError(str(error) or type(error).__name__, request=request)
    return _aborted(error, request)


def _budget_s(request: httpx.Request) -> float:
    timeouts = request.extensions.get("timeout") or {}
    values = [value for value in timeouts.values() if value is not None]
    return min(values) if values else DEFAULT_BUDGET_S


def _translate(error: BaseException, request: httpx.Request | None) -> httpx.TransportError:
    message = str(error) or type(error).__name__
    if isinstance(error, (NewConnectionError, SSLError, ConnectionRefusedError)):  # before: a NewConnectionError
        return httpx.ConnectError(message, request=request)  # is also a ConnectTimeoutError in urllib3
    if isinstance(error, ConnectTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(error, (ReadTimeoutError, TimeoutError, socket.timeout)):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(error, ProtocolError):
        return httpx.RemoteProtocolError(message, request=request)
    return httpx.ReadError(message, request=request)
