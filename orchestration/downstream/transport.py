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
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.response import BaseHTTPResponse

CHUNK_BYTES = 64 * 1024
DEFAULT_BUDGET_S = 5.0


class Urllib3Transport(httpx.BaseTransport):
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
        self._pools = urllib3.PoolManager(num_pools=4, maxsize=maxsize, block=False, retries=False, **tls)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + _budget_s(request)
        url = request.url
        pool = self._pools.connection_from_host(url.host, url.port, scheme=url.scheme)
        headers = urllib3.HTTPHeaderDict()
        for name, value in request.headers.multi_items():
            headers.add(name, value)
        left = _left(deadline)
        try:
            response = pool.urlopen(
                request.method,
                url.raw_path.decode("ascii"),
                body=request.read() or None,
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

    def close(self) -> None:
        self._pools.clear()


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


def _budget_s(request: httpx.Request) -> float:
    timeouts = request.extensions.get("timeout") or {}
    values = [value for value in timeouts.values() if value is not None]
    return min(values) if values else DEFAULT_BUDGET_S


def _left(deadline: float) -> float:
    return max(0.001, deadline - time.monotonic())


def _translate(error: BaseException, request: httpx.Request) -> httpx.TransportError:
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
