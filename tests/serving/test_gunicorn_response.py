"""The gateway worker's answers: the same bytes as gunicorn's, in fewer sends (``gateway_project.gunicorn_worker``).

Each answer is produced twice, by gunicorn's own ``Response`` and by ``CoalescingResponse``,
from a request gunicorn itself parsed, onto a socket that records every ``sendall``; the
bytes must be identical and the head must leave with the first body bytes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from gunicorn.config import Config
from gunicorn.http import message as gunicorn_message
from gunicorn.http import wsgi as gunicorn_wsgi
from gunicorn.http.parser import RequestParser

from gateway_project.gunicorn_worker import CoalescingResponse, _DateOncePerSecond

GET = b"GET /v1/checkout/summary HTTP/1.1\r\nHost: gw\r\n\r\n"
HEAD = b"HEAD /healthz HTTP/1.1\r\nHost: gw\r\n\r\n"


class RecordingSocket:
    """What gunicorn's request parser reads from and its response writes to."""

    def __init__(self, incoming: bytes) -> None:
        self.incoming = incoming
        self.sends: list[bytes] = []

    def recv(self, size: int) -> bytes:
        chunk, self.incoming = self.incoming[:size], self.incoming[size:]
        return chunk

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))


def answer(
    response_class: type[gunicorn_wsgi.Response],
    raw_request: bytes,
    status: str,
    headers: list[tuple[str, str]],
    body: Iterable[bytes],
) -> list[bytes]:
    cfg = Config()
    sock = RecordingSocket(raw_request)
    request = next(RequestParser(cfg, sock, ("127.0.0.1", 40000)))
    response = response_class(request, sock, cfg)
    response.start_response(status, headers)
    for chunk in body:
        response.write(chunk)
    response.close()
    return sock.sends


CASES = {
    "JSON with a length": (GET, "200 OK", [("Content-Type", "text/json"), ("Content-Length", "7")], [b'{"a":1}']),
    "an error envelope": (GET, "502 Bad Gateway", [("Content-Length", "2"), ("X-Request-ID", "r-1")], [b"{}"]),
    "no length: chunked": (GET, "200 OK", [("Content-Type", "text/plain")], [b"abc", b"defg"]),
    "several writes": (GET, "200 OK", [("Content-Length", "6")], [b"abc", b"def"]),
    "an empty body": (GET, "200 OK", [("Content-Length", "0")], [b""]),
    "no body at all": (GET, "204 No Content", [], []),
    "HEAD": (HEAD, "200 OK", [("Content-Length", "11")], [b'{"ok":true}']),
}


@pytest.fixture(autouse=True)
def fixed_date(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both answers of a case carry the same Date header, whenever the second turns."""
    monkeypatch.setattr("gunicorn.util.http_date", lambda timestamp=None: "Sat, 05 Dec 2026 05:00:00 GMT")


@pytest.mark.parametrize("case", CASES)
def test_the_same_bytes_as_gunicorns_own_response(case: str) -> None:
    raw_request, status, headers, body = CASES[case]
    assert b"".join(answer(CoalescingResponse, raw_request, status, headers, body)) == b"".join(
        answer(gunicorn_wsgi.Response, raw_request, status, headers, body)
    )


@pytest.mark.parametrize("case", ["JSON with a length", "an error envelope"])
def test_a_whole_answer_leaves_in_one_send(case: str) -> None:
    raw_request, status, headers, body = CASES[case]
    assert len(answer(gunicorn_wsgi.Response, raw_request, status, headers, body)) == 2  # what it replaces
    sends = answer(CoalescingResponse, raw_request, status, headers, body)
    assert len(sends) == 1
    assert sends[0].startswith(b"HTTP/1.1 " + status.encode()) and sends[0].endswith(body[-1])


def test_later_writes_of_a_long_answer_go_out_as_written() -> None:
    sends = answer(CoalescingResponse, GET, "200 OK", [("Content-Length", "6")], [b"abc", b"def"])
    assert [send[-3:] for send in sends] == [b"abc", b"def"]


def test_a_chunked_answer_keeps_its_framing() -> None:
    sends = answer(CoalescingResponse, GET, "200 OK", [], [b"abc"])
    assert b"Transfer-Encoding: chunked" in sends[0]
    assert b"".join(sends).endswith(b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")


def test_sendfile_writes_the_head_before_the_file(tmp_path: Path) -> None:
    cfg = Config()
    sock = RecordingSocket(GET)
    sent_files: list[bytes] = []
    sock.sendfile = lambda file, offset=0, count=None: sent_files.append(b"".join(sock.sends))  # type: ignore[attr-defined]
    response = CoalescingResponse(next(RequestParser(cfg, sock, ("127.0.0.1", 40000))), sock, cfg)
    response.start_response("200 OK", [("Content-Length", "5")])
    path = tmp_path / "f.txt"
    path.write_bytes(b"hello")
    with path.open("rb") as file:
        assert response.sendfile(gunicorn_wsgi.FileWrapper(file)) is True
    response.close()
    assert len(sent_files) == 1 and sent_files[0].startswith(b"HTTP/1.1 200 OK") and sent_files[0].endswith(b"\r\n\r\n")


def test_the_date_is_gunicorns_formatted_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    formatted: list[float] = []
    monkeypatch.setattr(
        "gateway_project.gunicorn_worker._format_http_date", lambda t: formatted.append(t) or f"date {int(t)}"
    )
    now = [1_800_000_000.2]
    monkeypatch.setattr(time, "time", lambda: now[0])
    http_date = _DateOncePerSecond()
    assert http_date() == http_date() == "date 1800000000"
    now[0] = 1_800_000_000.9
    assert http_date() == "date 1800000000"
    now[0] = 1_800_000_001.0
    assert http_date() == "date 1800000001"
    assert formatted == [1_800_000_000, 1_800_000_001]
    assert http_date(12.0) == "date 12"  # an explicit time is formatted as asked


def test_gunicorns_c_request_parser_is_installed_and_taken() -> None:
    """requirements/base.txt pins gunicorn-h1c; gunicorn's http_parser "auto" uses it when it can."""
    assert gunicorn_message._check_fast_parser(Config()) is True
    request = next(RequestParser(Config(), RecordingSocket(GET), ("127.0.0.1", 1)))
    assert request._use_fast and request.path == "/v1/checkout/summary" and ("HOST", "gw") in request.headers


def test_an_unread_body_is_no_concern_of_the_response() -> None:
    """A POST's body left unread by the app: the answer is still identical (gunicorn drains it itself)."""
    post = b"POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nabc"
    args = ("200 OK", [("Content-Length", "2")], [b"ok"])
    assert b"".join(answer(CoalescingResponse, post, *args)) == b"".join(answer(gunicorn_wsgi.Response, post, *args))
