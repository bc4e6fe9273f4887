"""gunicorn's gevent worker, answering requests it cannot parse with the contract's envelope.

gunicorn parses the request line and headers before any of our code runs; a request it
cannot parse (a garbled request line, a header with a newline, a request line or header
block over its limits, bad chunked framing) it answers itself, with an HTML page and no
``X-Request-ID``. The contract gives every non-2xx the gateway produces the JSON error
envelope, so ``handle_error`` is the only part replaced: the same statuses gunicorn
chooses (400, 414, 417, 431, 501...), the same warning in its error log, then the
envelope (``BAD_REQUEST``, or ``INTERNAL_ERROR`` for a failure that is not the client's)
with ``Connection: close``, as gunicorn closes the connection after such an error.

Two costs of gunicorn's per-request path are cut in the worker process too, with the same
bytes on the wire: an answer's head waits for its first body bytes and goes out in the
same ``send`` (gunicorn sends them apart: two system calls and two gevent ``sendall``
round trips a request), and the ``Date`` header is formatted once a second instead of
once a request (``email.utils.formatdate``). Both are installed by :meth:`init_process`,
after the fork, into gunicorn's modules: gunicorn builds its ``Response`` and calls
``util.http_date`` by module lookup and has no setting for either.
"""

from __future__ import annotations

import ssl
import time
import uuid
from typing import Any

from gunicorn import util as gunicorn_util
from gunicorn.http import errors as http_errors
from gunicorn.http import wsgi as gunicorn_wsgi
from gunicorn.workers.ggevent import GeventWorker

from orchestration import fast_json
from orchestration.errors import BadRequest, GatewayError, envelope

# gunicorn's own status for each parse error it blames on the client (Worker.handle_error)
_CLIENT_ERRORS: tuple[tuple[type[BaseException], int, str], ...] = (
    (http_errors.LimitRequestLine, 414, "URI Too Long"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large"),
    (http_errors.ExpectationFailed, 417, "Expectation Failed"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden"),
    (ssl.SSLError, 403, "Forbidden"),
    (http_errors.ParseException, 400, "Bad Request"),  # every other request it could not read
)
# gunicorn's settings or the application's response headers: not the request's fault
_NOT_THE_CLIENTS = (
    http_errors.ConfigurationProblem,
    http_errors.InvalidResponseHeader,
    http_errors.InvalidResponseHeaderName,
)
_MESSAGE_CHARS = 200  # the parse error's text names what was wrong; a client's bytes stay short


def error_status(exc: BaseException) -> tuple[int, str, bool]:
    """(status, reason, whether the client is to blame) for an error gunicorn's parser raised."""
    if not isinstance(exc, _NOT_THE_CLIENTS):
        for kind, status, reason in _CLIENT_ERRORS:
            if isinstance(exc, kind):
                return status, reason, True
    return 500, "Internal Server Error", False


def error_answer(exc: BaseException, request_id: str) -> bytes:
    """The whole HTTP/1.1 answer: status line, headers and the envelope."""
    status, reason, client_error = error_status(exc)
    error = BadRequest(f"Malformed HTTP request: {str(exc)[:_MESSAGE_CHARS]}") if client_error else GatewayError()
    body = fast_json.dumps(envelope(error, request_id=request_id))
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


class CoalescingResponse(gunicorn_wsgi.Response):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn's response, sending its head together with the first body bytes.

    ``send_headers`` builds the head as gunicorn does but keeps it; the first
    ``_emit_body`` (the one place gunicorn puts body bytes on the wire) or ``close`` (a
    response without a body: HEAD, 204, 304, empty) writes it. ``headers_sent`` turns
    true at the same moment as in gunicorn, so its "headers already sent" decisions do not
    change. ``sendfile`` writes to the socket itself, so there the head is written at once.
    """

    headers_sent: bool  # set by gunicorn's __init__
    _pending_head: bytes | None = None
    _hold_head = True

    def send_headers(self) -> None:
        if self.headers_sent:
            return
        lines = self.default_headers()
        lines.extend([f"{name}: {value}\r\n" for name, value in self.headers])
        head = gunicorn_util.to_bytestring("{}\r\n".format("".join(lines)), "latin-1")
        self.headers_sent = True
        if self._hold_head:
            self._pending_head = head
        else:
            gunicorn_util.write(self.sock, head)

    def _emit_body(self, data: bytes) -> None:
        if self._pending_head is not None and not self.chunked:
            data, self._pending_head = self._pending_head + data, None
        else:
            self._flush_head()  # a chunked body's framing starts after the head
        super()._emit_body(data)

    def _flush_head(self) -> None:
        head, self._pending_head = self._pending_head, None
        if head is not None:
            gunicorn_util.write(self.sock, head)

    def sendfile(self, respiter: Any) -> bool:
        self._hold_head = False
        sent: bool = super().sendfile(respiter)
        return sent

    def close(self) -> None:
        if not self.headers_sent:
            self.send_headers()
        self._flush_head()
        super().close()


class _DateOncePerSecond:
    """``util.http_date`` for the current time, formatted again only when the second changes."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, timestamp: float | None = None) -> str:
        if timestamp is not None:
            return str(_format_http_date(timestamp))
        second = int(time.time())
        if second != self._second:
            self._text = str(_format_http_date(second))
            self._second = second
        return self._text


_format_http_date = gunicorn_util.http_date


class GatewayWorker(GeventWorker):  # type: ignore[misc]  # gunicorn has no type hints
    def init_process(self) -> None:
        gunicorn_wsgi.Response = CoalescingResponse  # wsgi.create builds every HTTP/1 answer from it
        gunicorn_util.http_date = _DateOncePerSecond()
        super().init_process()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        _, _, client_error = error_status(exc)
        if client_error:
            ip = (addr or ("", -1))[0]
            self.log.warning("Invalid request from ip=%s: %s", ip, exc)
        else:
            self.log.exception("Error handling request %s", getattr(req, "uri", "(no URI read)"))
        try:
            client.setblocking(False)  # as gunicorn's write_error: never wait on a client that stopped reading
            client.sendall(error_answer(exc, uuid.uuid4().hex))
        except Exception:  # noqa: BLE001 - the client may be gone already; nothing left to tell it
            self.log.debug("Failed to send error message.")
