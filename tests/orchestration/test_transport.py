"""The real transport against a loopback server: whole-attempt timeouts, limits, mTLS."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from orchestration.clock import SystemClock
from orchestration.downstream import DownstreamPool, RequestSpec
from orchestration.outcome import Outcome, OutcomeKind
from orchestration.plan import DownstreamAuth, Service
from tests.orchestration.loopback import make_pki, mtls_server_context, serve


def _spec(path: str) -> RequestSpec:
    return RequestSpec(method="GET", path=path, request_id="req-loop")


def _attempt(svc: Service, path: str, timeout_s: float = 1.0, **options) -> Outcome:  # type: ignore[no-untyped-def]
    pool = DownstreamPool({svc.name: svc}, clock=SystemClock(), environ={}, **options)
    try:
        return pool.client(svc.name).attempt(_spec(path), timeout_s)
    finally:
        pool.close()


def test_a_json_answer_over_the_real_transport():
    with serve() as url:
        outcome = _attempt(Service(name="echo", base_url=url), "/items/a%2Fb?x=1")
    assert outcome.kind is OutcomeKind.OK
    assert outcome.body["path"] == "/items/a%2Fb?x=1"
    assert outcome.body["headers"]["x-request-id"] == "req-loop"


def test_an_encoded_path_segment_reaches_the_server_unchanged():
    with serve() as url:
        outcome = _attempt(Service(name="echo", base_url=url), "/carts/%2E%2E%2Fx%3Fy%23z/items")
    assert outcome.body["path"] == "/carts/%2E%2E%2Fx%3Fy%23z/items"


def test_a_dripping_body_is_cut_at_the_attempt_timeout():
    with serve() as url:
        started = time.perf_counter()
        outcome = _attempt(Service(name="drip", base_url=url), "/drip", timeout_s=0.3)
        elapsed = time.perf_counter() - started
    assert outcome.kind is OutcomeKind.TIMEOUT
    assert 0.25 < elapsed < 5  # waited for the timeout (0.3 s), cut before the body's end (5 s)


def test_a_large_body_is_bad_body_without_reading_it_all():
    with serve() as url:
        outcome = _attempt(Service(name="big", base_url=url), "/big", max_body_bytes=64 * 1024)
    assert outcome.kind is OutcomeKind.BAD_BODY


def test_a_refused_connection_is_connect_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = _attempt(Service(name="gone", base_url=f"http://127.0.0.1:{port}"), "/x")
    assert outcome.kind is OutcomeKind.CONNECT_ERROR


def test_mtls_presents_the_client_certificate(tmp_path: Path):
    pki = make_pki(tmp_path)
    auth = DownstreamAuth(type="mtls", cert_file=pki["client_cert"], key_file=pki["client_key"], ca_file=pki["ca"])
    with serve(mtls_server_context(pki)) as url:
        outcome = _attempt(Service(name="secure", base_url=url, auth=auth), "/whoami")
    assert outcome.kind is OutcomeKind.OK, outcome.detail
    assert outcome.body["peer"] == {"commonName": "gateway-client"}


def test_mtls_server_rejects_a_client_without_certificate(tmp_path: Path):
    pki = make_pki(tmp_path)
    auth = DownstreamAuth(type="mtls", ca_file=pki["ca"])
    with serve(mtls_server_context(pki)) as url:
        outcome = _attempt(Service(name="secure", base_url=url, auth=auth), "/whoami")
    assert outcome.kind is OutcomeKind.CONNECT_ERROR


def test_an_untrusted_server_certificate_is_refused(tmp_path: Path):
    pki, other = make_pki(tmp_path), make_pki(_subdir(tmp_path, "other"))
    auth = DownstreamAuth(type="mtls", cert_file=pki["client_cert"], key_file=pki["client_key"], ca_file=other["ca"])
    with serve(mtls_server_context(pki)) as url:
        outcome = _attempt(Service(name="secure", base_url=url, auth=auth), "/whoami")
    assert outcome.kind is OutcomeKind.CONNECT_ERROR


def _subdir(path: Path, name: str) -> Path:
    (path / name).mkdir()
    return path / name


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_the_direct_exchange_writes_what_urllib3_writes_and_reuses_the_connection():
    """The lean exchange (request head built here, response read by http.client) sends the
    bytes urllib3's ``request`` sends, reads Content-Length and chunked bodies, keeps the
    connection alive, and opens a new one after ``Connection: close``."""
    import threading

    import httpx

    from orchestration.downstream.transport import Urllib3Transport, _request_head

    answers = [
        b'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{"a":1}',
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"b\r\n4\r\n":2}\r\n0\r\n\r\n',
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ]
    received: list[tuple[int, bytes]] = []
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        for number in range(2):
            conn, _ = server.accept()
            with conn:
                while data := conn.recv(65536):
                    received.append((number, data))
                    answer = answers[len(received) - 1]
                    conn.sendall(answer)
                    if b"close" in answer:
                        break

    threading.Thread(target=serve, daemon=True).start()
    defaults = [("Accept-Encoding", "gzip, deflate"), ("User-Agent", "orchestration-gateway")]
    requests = [
        httpx.Request("GET", f"http://127.0.0.1:{port}/a%2Fb?x=1", headers=defaults),
        httpx.Request("POST", f"http://127.0.0.1:{port}/p", headers=[*defaults, ("X-Id", "1")], json={"k": [1]}),
        httpx.Request("GET", f"http://127.0.0.1:{port}/c", headers=defaults),
        httpx.Request("DELETE", f"http://127.0.0.1:{port}/d", headers=defaults),
    ]
    transport = Urllib3Transport()
    bodies = []
    try:
        for request in requests:
            assert _request_head(request, request.read() or None) is not None  # the lean path
            response = transport.handle_request(request)
            bodies.append((response.status_code, b"".join(response.stream)))  # type: ignore[attr-defined]
            response.close()
    finally:
        transport.close()
        server.close()
    assert bodies == [(200, b'{"a":1}'), (200, b'{"b":2}'), (200, b"{}"), (204, b"")]
    assert [number for number, _ in received] == [0, 0, 0, 1]
    host = f"127.0.0.1:{port}".encode()
    common = b"host: " + host + b"\r\naccept-encoding: gzip, deflate\r\nuser-agent: orchestration-gateway\r\n"
    assert received[0][1] == b"GET /a%2Fb?x=1 HTTP/1.1\r\n" + common + b"\r\n"
    assert received[1][1] == (
        b"POST /p HTTP/1.1\r\n" + common + b"x-id: 1\r\ncontent-length: 9\r\ncontent-type: application/json\r\n\r\n"
        b'{"k":[1]}'
    )
