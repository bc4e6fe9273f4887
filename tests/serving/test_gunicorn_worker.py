"""The envelope gunicorn's worker answers for a request it could not parse (``gateway_project.gunicorn_worker``)."""

from __future__ import annotations

import json

import pytest
from gunicorn.http import errors as http_errors

from gateway_project.gunicorn_worker import error_answer, error_status


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (http_errors.InvalidRequestLine("GARBAGE"), 400),
        (http_errors.InvalidHeaderName("Bad Name"), 400),
        (http_errors.InvalidProxyHeader("x"), 400),
        (http_errors.LimitRequestLine(5000, 4094), 414),
        (http_errors.LimitRequestHeaders("too many"), 431),
        (http_errors.ExpectationFailed("100-continue-please"), 417),
        (http_errors.UnsupportedTransferCoding("gzip"), 501),
    ],
)
def test_the_clients_parse_errors_keep_gunicorns_status_and_get_bad_request(error: Exception, status: int) -> None:
    answer = error_answer(error, "req-1")
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].split()[1] == str(status)
    assert "Content-Type: application/json" in lines and "X-Request-ID: req-1" in lines
    assert f"Content-Length: {len(body)}" in lines
    envelope = json.loads(body)
    assert envelope["data"] == {}
    assert envelope["error"]["code"] == "BAD_REQUEST" and envelope["error"]["requestId"] == "req-1"


@pytest.mark.parametrize(
    "error",
    [http_errors.InvalidResponseHeader("X-Bad\n"), http_errors.ConfigurationProblem("x"), RuntimeError("boom")],
)
def test_what_is_not_the_clients_fault_is_a_500_internal_error(error: Exception) -> None:
    assert error_status(error)[0] == 500
    body = error_answer(error, "req-2").partition(b"\r\n\r\n")[2]
    assert json.loads(body)["error"] == {
        "code": "INTERNAL_ERROR",
        "message": "Internal gateway error",
        "failedServices": [],
        "partialData": False,
        "requestId": "req-2",
    }


def test_a_long_parse_error_is_cut_in_the_message() -> None:
    body = error_answer(http_errors.InvalidRequestLine("x" * 5000), "r").partition(b"\r\n\r\n")[2]
    assert len(json.loads(body)["error"]["message"]) < 300
