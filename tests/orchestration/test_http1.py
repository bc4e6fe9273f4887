"""The lean HTTP/1.1 response reader under the transport, against a scripted server:
every answer shape reads as http.client reads it, whether it takes the lean path
or falls back, and the connection is reused only when that is safe."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from orchestration.downstream import http1
from orchestration.downstream.transport import Urllib3Transport

HEADERS = [("Accept-Encoding", "gzip, deflate"), ("User-Agent", "orchestration-gateway")]


@contextmanager
def scripted(answers: list[list[bytes]], pause_s: float = 0.0) -> Iterator[tuple[int, list[int]]]:
    """A server that answers the n-th request with the pieces of ``answers[n]``, sent
    apart; it closes the connection after an answer whose pieces end with b"" (a marker).
    Yields the port and the list of connection numbers each request arrived on."""
    server = socket.create_server(("127.0.0.1", 0))
    connections: list[int] = []

    def serve() -> None:
        number = 0
        while len(connections) < len(answers):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while len(connections) < len(answers) and conn.recv(65536):
                    connections.append(number)
                    pieces = answers[len(connections) - 1]
                    try:
                        for piece in pieces:
                            if piece:
                                conn.sendall(piece)
                                time.sleep(pause_s)
                    except OSError:  # the client gave up (the header flood)
                        break
                    if pieces and pieces[-1] == b"":
                        break
            number += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], connections
    finally:
        server.close()


def _exchange_all(port: int, count: int, method: str = "GET") -> list[tuple[int, dict[str, str], bytes]]:
    transport = Urllib3Transport()
    results = []
    try:
        for number in range(count):
            request = httpx.Request(method, f"http://127.0.0.1:{port}/r{number}", headers=HEADERS)
            request.extensions["timeout"] = {"read": 2.0}
            response = transport.handle_request(request)
            body = b"".join(response.stream)  # type: ignore[attr-defined]
            response.close()
            results.append((response.status_code, dict(response.headers), body))
    finally:
        transport.close()
    return results


def test_a_plain_answer_split_in_many_pieces_reads_whole_and_keeps_the_connection():
    answer = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a":[1,2]}'
    pieces = [answer[i : i + 5] for i in range(0, len(answer), 5)]
    with scripted([pieces, [answer]], pause_s=0.002) as (port, connections):
        results = _exchange_all(port, 2)
    assert results == [(200, {"content-type": "application/json", "content-length": "11"}, b'{"a":[1,2]}')] * 2
    assert connections == [0, 0]


@pytest.mark.parametrize(
    "answer, status, body",
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 200, b"{}"),
        (b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\n{}", 200, b"{}"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204, b""),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", 200, b"[]"),
        (b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", 200, b"{}"),
    ],
    ids=["chunked", "folded header", "204", "100 continue", "bare LF"],
)
def test_unusual_answers_are_read_as_http_client_reads_them(answer: bytes, status: int, body: bytes):
    follow_up = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnull"
    with scripted([[answer], [follow_up]]) as (port, connections):
        results = _exchange_all(port, 2)
    assert [(code, data) for code, _, data in results] == [(status, body), (200, b"null")]
    assert connections == [0, 0]  # kept alive through the fallback too


def test_http_1_0_and_close_delimited_bodies_fall_back_and_are_not_reused():
    answers = [[b"HTTP/1.0 200 OK\r\n\r\n[1]", b""], [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"]]
    with scripted(answers) as (port, connections):
        results = _exchange_all(port, 2)
    assert [(code, data) for code, _, data in results] == [(200, b"[1]"), (200, b"{}")]
    assert connections == [0, 1]


def test_connection_close_and_surplus_bytes_open_a_new_connection():
    answers = [
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", b""],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}garbage", b""],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"],
    ]
    with scripted(answers) as (port, connections):
        results = _exchange_all(port, 3)
    assert [data for _, _, data in results] == [b"{}", b"{}", b"[]"]
    assert connections == [0, 1, 2]


def test_a_body_cut_short_by_the_peer_is_a_protocol_error():
    cut_short = [[b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", b""]]
    with scripted(cut_short) as (port, _), pytest.raises(httpx.RemoteProtocolError):
        _exchange_all(port, 1)


def test_a_connection_closed_without_an_answer_is_a_protocol_error():
    with scripted([[b""]]) as (port, _), pytest.raises(httpx.RemoteProtocolError):
        _exchange_all(port, 1)


def test_a_head_that_never_ends_is_refused():
    header_flood = [b"HTTP/1.1 200 OK\r\n"] + [b"X-Pad: " + b"x" * 1000 + b"\r\n"] * 80
    with scripted([header_flood]) as (port, _), pytest.raises(httpx.RemoteProtocolError):
        _exchange_all(port, 1)


def test_the_parser_keeps_names_and_values_as_sent():
    head = http1._parse(b"HTTP/1.1 201 Created\r\nX-Trace:  a b \r\ncontent-LENGTH: 0\r\nX-Utf8: \xc3\xa9", b"")
    headers = [(b"X-Trace", b"a b "), (b"content-LENGTH", b"0"), (b"X-Utf8", b"\xc3\xa9")]
    assert head == http1.Head(201, headers, 0, False, b"")
    closing = http1._parse(b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1", b"")
    assert closing is not None and closing.will_close


@pytest.mark.parametrize(
    "extra, lean",
    [
        ([], True),
        ([("X-Folded", "a\r\n b")], True),  # obs-fold: http.client lets it through, so do we
        ([("X-Bad", "a\nb")], False),
        ([("X-Bad", "a\r")], False),
        ([("X:Bad", "a")], False),
        ([(" X-Bad", "a")], False),
        ([("Transfer-Encoding", "chunked")], False),
    ],
)
def test_the_request_head_refuses_what_http_client_refuses(extra: list[tuple[str, str]], lean: bool):
    from orchestration.downstream.transport import _request_head

    request = httpx.Request("GET", "http://127.0.0.1:9/x", headers=[*HEADERS, *extra])
    head = _request_head(request, None)
    assert (head is not None) is lean
    if lean:
        assert head is not None and head.startswith(b"GET /x HTTP/1.1\r\nhost: 127.0.0.1:9\r\n")


@pytest.mark.parametrize(
    "block",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2",  # two lengths
        b"HTTP/1.1 200 OK\r\nContent-Length: x1",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked",
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 1",
        b"HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 1",  # bare LF inside
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 1",
        b"HTTP/1.1 200 OK\r\nX-A: 1",  # no length: read to close
        b"HTTP/1.0 200 OK\r\nContent-Length: 1",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1",
        b"HTTP/1.1 200 OK",
    ],
)
def test_anything_else_goes_to_http_client(block: bytes):
    assert http1._parse(block, b"") is None


def test_a_non_ascii_header_value_reaches_httpx_as_bytes():
    answer = b"HTTP/1.1 200 OK\r\nX-Name: Jos\xc3\xa9\r\nContent-Length: 2\r\n\r\n{}"
    with scripted([[answer]]) as (port, _):
        [(status, headers, body)] = _exchange_all(port, 1)
    assert (status, body) == (200, b"{}") and headers["x-name"] == "José"
