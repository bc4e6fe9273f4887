"""``POST /webhooks/invalidate``: signed cache invalidation (contract section 4).

The signature is checked over the raw body before anything is parsed, so an
unsigned caller learns nothing about the payload rules and nothing is queued.
A valid request is answered 202 with the Celery task id; the purge itself runs
in the task (in-process without a broker). A replayed webhook purges again,
which is harmless: purging is idempotent. If the task cannot be queued (broker
down) or, run in-process, cannot reach Redis, the answer is 503 so the sender
retries: the entries it names are not known to be gone.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from orchestration.edge import webhook_signature
from orchestration.edge.invalidation import parse_invalidation
from orchestration.errors import (
    BadRequest,
    GatewayError,
    MethodNotAllowed,
    Overloaded,
    PayloadTooLarge,
    Unauthenticated,
)
from orchestration.web.aggregate import error_response, json_response
from orchestration.web.client_request import request_id_of

logger = logging.getLogger("gateway.webhooks")

SIGNATURE_HEADER = "X-Gateway-Signature"


@csrf_exempt
def invalidate(request: HttpRequest) -> HttpResponse:
    request_id = request_id_of(request)
    try:
        task_id = _queue(request)
    except GatewayError as error:
        return error_response(error, request_id=request_id)
    return json_response({"taskId": task_id, "status": "accepted"}, status=202, request_id=request_id)


def _queue(request: HttpRequest) -> str:
    if request.method != "POST":
        raise MethodNotAllowed(headers={"Allow": "POST"})
    body = _raw_body(request)
    secret = settings.GATEWAY["WEBHOOK_SECRET"]
    if not webhook_signature.verify(body, request.headers.get(SIGNATURE_HEADER), secret):
        if not secret:
            logger.warning("invalidation webhook refused: GATEWAY_WEBHOOK_SECRET is not set")
        raise Unauthenticated("Missing or invalid webhook signature")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("Request body is not valid JSON") from None
    return _enqueue(parse_invalidation(payload))


def _raw_body(request: HttpRequest) -> bytes:
    limit = settings.GATEWAY["MAX_BODY_BYTES"]
    try:
        body = request.body
    except RequestDataTooBig:
        raise PayloadTooLarge(f"Request body is larger than {limit} bytes") from None
    if len(body) > limit:
        raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
    return body


def _enqueue(invalidation: dict[str, object]) -> str:
    from orchestration.tasks import purge_cache_tags

    try:
        return str(purge_cache_tags.delay(invalidation).id)
    except Exception:  # broker or (in-process) Redis down: the sender must retry
        logger.exception("invalidation could not be queued or applied")
        raise Overloaded("Invalidation could not be applied, retry later", retry_after_s=5) from None
