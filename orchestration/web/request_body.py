"""Receive the request body before the request may take an admission slot.

Why before: under gunicorn's gevent worker ``wsgi.input`` reads from a cooperative
socket, so a client that drips its body keeps whatever its request holds while
it waits. Read inside the admission slot, a few dripping clients held every slot
of a worker and everyone else got 503 OVERLOADED (issue 11). Read here, a
dripping client holds its own greenlet and nothing else, and only for
``GATEWAY_BODY_TIMEOUT_MS``: then 408 REQUEST_TIMEOUT.

The body is bounded in size (``GATEWAY_MAX_BODY_BYTES``: 413) and in time (408),
and a stream that fails (client gone mid-body, malformed chunking) is a 400.
None of them is raised here: the error travels in the ``ReceivedBody`` and is
raised where the view reads the body, after routing, auth and rate limits, so a
client sees the edge's order of errors whatever its body did.

Why ``gevent.Timeout`` and not a socket timeout: the deadline bounds the whole
body, not each read (a byte a second passes any per-read timeout), and the socket
is the server's. Outside gevent (Django's test client, ``runserver``) reads do
not yield to the hub, so the timer cannot fire and the body is read as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import gevent
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from orchestration.errors import BadRequest, GatewayError, PayloadTooLarge, RequestTimeout

logger = logging.getLogger("gateway.request_body")


@dataclass(frozen=True, slots=True)
class ReceivedBody:
    """The body's raw bytes, or the error that stands for them (raised by ``content``)."""

    raw: bytes = b""
    error: GatewayError | None = None

    def content(self) -> bytes:
        if self.error is not None:
            raise self.error
        return self.raw


NO_BODY = ReceivedBody()


class _BodyTimedOut(Exception):
    """Thrown into the reading greenlet at the deadline. An ``Exception`` (gevent's own
    ``Timeout`` is a ``BaseException``) so that gunicorn's body reader marks its stream
    failed and closes the connection after the 408, instead of draining the rest of the
    body to find a next request that would start at an unknown byte."""


def receive_body(request: HttpRequest, *, max_bytes: int, timeout_s: float) -> ReceivedBody:
    """The whole body within ``max_bytes`` and ``timeout_s`` (0: no time bound)."""
    chunked = _is_chunked(request)
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not chunked and declared == "0":
        return NO_BODY  # most requests: no timer, no read
    if declared.isdigit() and int(declared) > max_bytes:
        return ReceivedBody(error=_too_large(max_bytes))
    try:
        with gevent.Timeout(timeout_s if timeout_s > 0 else None, _BodyTimedOut()):
            raw = _chunked_body(request, max_bytes) if chunked else request.body
    except _BodyTimedOut:
        return ReceivedBody(error=RequestTimeout(f"Request body not received within {timeout_s * 1000:.0f} ms"))
    except RequestDataTooBig:
        return ReceivedBody(error=_too_large(max_bytes))
    except Exception:  # the client's stream: gone mid-body (UnreadablePostError), bad chunking, bad length
        logger.info("request body could not be read", exc_info=True)
        return ReceivedBody(error=BadRequest("Request body could not be read"))
    if len(raw) > max_bytes:
        return ReceivedBody(error=_too_large(max_bytes))
    return ReceivedBody(raw)


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body is larger than {max_bytes} bytes")


def _is_chunked(request: HttpRequest) -> bool:
    """A body sent with ``Transfer-Encoding: chunked`` and no Content-Length, which the
    server (gunicorn) de-chunks and terminates; Django alone would read it as empty."""
    return (
        not request.META.get("CONTENT_LENGTH")
        and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        and bool(request.META.get("wsgi.input_terminated"))
    )


def _chunked_body(request: HttpRequest, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes: enough to tell a body over the limit (413)."""
    return bytes(request.META["wsgi.input"].read(max_bytes + 1))
