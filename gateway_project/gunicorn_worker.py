"""gunicorn's gevent worker, answering requests it cannot parse with the contract's envelope.

gunicorn parses the request line and headers before any of our code runs; a request it
cannot parse (a garbled request line, a header with a newline, a request line or header
block over its limits, bad chunked framing) it answers itself, with an HTML page and no
``X-Request-ID``. The contract gives every non-2xx the gateway produces the JSON error
envelope, so ``handle_error`` is the only part replaced: the same statuses gunicorn
chooses (400, 414, 417, 431, 501...), the same warning in its error log, then the
envelope (``BAD_REQUEST``, or ``INTERNAL_ERROR`` for a failure that is not the client's)
with ``Connection: close``, as gunicorn closes the connection after such an error.
"""

from __future__ import annotations

import ssl
import uuid
from typing import Any

from gunicorn.http import errors as http_errors
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


class GatewayWorker(GeventWorker):  # type: ignore[misc]  # gunicorn has no type hints
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
