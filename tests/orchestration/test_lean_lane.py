"""The lean lane (``DownstreamClient`` writing request heads itself, answers read without
httpx objects) puts the same bytes on the wire as the httpx path, and gives the same
outcomes."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from orchestration.downstream import DownstreamPool, RequestSpec, client
from orchestration.downstream.auth import transport_for
from orchestration.downstream.transport import Urllib3Transport
from orchestration.observability import tracing
from orchestration.outcome import Outcome
from orchestration.plan import DownstreamAuth, Service
from tests.support.raw_server import serve_connections

_ANSWERS = {
    b"/ok": b'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{"a":1}',
    b"/chunked": b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"b\r\n4\r\n":2}\r\n0\r\n\r\n',
    b"/busy": b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n",
    b"/gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nnot",
}


@pytest.fixture
def wire() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback HTTP/1.1 server keeping every request it reads (head and body) as bytes."""
    received: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))

    def handle(conn: socket.socket) -> None:
        data = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
                size = int(length.group(1)) if length else 0
                while len(data) < size:
                    data += conn.recv(65536)
                received.append(head + b"\r\n\r\n" + data[:size])
                data = data[size:]
                target = head.split(b" ")[1].split(b"?")[0]
                conn.sendall(_ANSWERS.get(target, _ANSWERS[b"/ok"]))

    serve_connections(server, handle)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", received
    finally:
        server.close()


SPECS = [
    RequestSpec(method="GET", path="/ok", params=(("q", "1"), ("q", "é")), request_id="r-1"),
    RequestSpec(method="GET", path="/a/b%2Fc?x=1", request_id="r-1", client_authorization="Bearer c"),
    RequestSpec(method="POST", path="/p", json_body={"items": [{"sku": "é", "n": 1.5}], "x": None}, has_body=True),
    RequestSpec(method="POST", path="/p", json_body=None, has_body=True),  # a body template that rendered null
    RequestSpec(method="PUT", path="/p", json_body=[1, "two"], has_body=True, headers=(("Content-Type", "x/y"),)),
    RequestSpec(method="PATCH", path="/p"),
    RequestSpec(method="DELETE", path="/d", headers=(("X-Trace", "t"), ("User-Agent", "mine"), ("accept", "*/*"))),
    RequestSpec(method="get", path="/lower"),
    RequestSpec(method="HEAD", path="/h"),
    RequestSpec(method="GET", path="/chunked"),
    RequestSpec(method="GET", path="/busy"),
    RequestSpec(method="GET", path="/gzip"),
    RequestSpec(method="GET", path="/ok", headers=(("X-Folded", "a\r\n b"),)),  # legal to http.client
]
SERVICES = [
    Service(name="plain", base_url="{url}"),
    Service(name="based", base_url="{url}/base"),
    Service(name="keyed", base_url="{url}", auth=DownstreamAuth(type="api_key", header="X-Key", key_env="KEY")),
    Service(name="forward", base_url="{url}", auth=DownstreamAuth(type="bearer_forward")),
]


LEAN_CALLS: list[bytes] = []


@pytest.fixture(autouse=True)
def _count_lean_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    lean_exchange = Urllib3Transport.lean_exchange

    def counted(self, url, head, *args):  # type: ignore[no-untyped-def]
        LEAN_CALLS.append(head)
        return lean_exchange(self, url, head, *args)

    LEAN_CALLS.clear()
    monkeypatch.setattr(Urllib3Transport, "lean_exchange", counted)


def _sent(url: str, received: list[bytes], svc: Service, spec: RequestSpec, lean: bool) -> tuple[Outcome, bytes]:
    client.LEAN_LANE = lean
    base_url = svc.base_url.format(url=url)
    svc = Service(name=svc.name, base_url=base_url, auth=svc.auth, deadline_header=svc.deadline_header)
    traced = tracing.PropagatingTransport
    pool = DownstreamPool({svc.name: svc}, lambda s: traced(transport_for(s)), environ={"KEY": "k"})
    before = len(received)
    try:
        outcome = pool.client(svc.name).attempt(spec, 5.0)
    finally:
        pool.close()
        client.LEAN_LANE = True
    assert len(received) == before + 1
    return outcome, received[-1]


@pytest.mark.parametrize("svc", SERVICES, ids=[s.name for s in SERVICES])
@pytest.mark.parametrize("spec", SPECS, ids=[f"{s.method} {s.path} {len(s.headers)}" for s in SPECS])
def test_the_lean_lane_sends_the_bytes_the_httpx_path_sends(wire, monkeypatch, svc, spec):
    url, received = wire
    propagated = (("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), ("Baggage", "k=v"))
    monkeypatch.setattr(tracing, "_propagation_headers", lambda: propagated)
    by_httpx, sent_by_httpx = _sent(url, received, svc, spec, lean=False)
    lean, sent_lean = _sent(url, received, svc, spec, lean=True)
    assert sent_lean == sent_by_httpx
    assert b"\r\ntraceparent: 00-0af" in sent_lean
    assert len(LEAN_CALLS) == 1  # the second call went through the lean lane, the first did not
    assert (lean.kind, lean.status, lean.body, lean.retry_after_s, lean.detail) == (
        by_httpx.kind,
        by_httpx.status,
        by_httpx.body,
        by_httpx.retry_after_s,
        by_httpx.detail,
    )


def test_the_deadline_header_goes_in_the_same_place(wire):
    """Its value is the time left (it differs between two calls): compared without it."""
    url, received = wire
    svc = Service(name="d", base_url=url, deadline_header="X-Deadline-Ms")
    spec = RequestSpec(method="POST", path="/p", json_body={"a": 1}, has_body=True, request_id="r")
    heads = [_sent(url, received, svc, spec, lean)[1] for lean in (False, True)]
    assert len(LEAN_CALLS) == 1
    assert [re.sub(rb"x-deadline-ms: \d+", b"x-deadline-ms: N", head) for head in heads] == [
        re.sub(rb"x-deadline-ms: \d+", b"x-deadline-ms: N", heads[0])
    ] * 2
    assert b"\r\nx-request-id: r\r\nx-deadline-ms: " in heads[1]


@pytest.mark.parametrize(
    ("headers", "lines"),
    [
        ((), [b"x-request-id: r", b"x-deadline-ms: N"]),
        # the same name: the configured value replaced in its place
        ((("X-Deadline-Ms", "c"), ("X-A", "1")), [b"x-deadline-ms: N", b"x-a: 1", b"x-request-id: r"]),
        # another spelling: both sent, the deadline last
        (
            (("x-deadline-ms", "c"), ("X-A", "1")),
            [b"x-deadline-ms: c", b"x-a: 1", b"x-request-id: r", b"x-deadline-ms: N"],
        ),
    ],
)
def test_the_deadline_header_is_sent_as_by_httpx_beside_request_headers(wire, headers, lines):
    """Lean lane and httpx path alike (the lean lane writes the deadline from a cached line)."""
    url, received = wire
    svc = Service(name="d", base_url=url, deadline_header="X-Deadline-Ms")
    spec = RequestSpec(method="GET", path="/ok", headers=headers, request_id="r")
    heads = [_sent(url, received, svc, spec, lean)[1] for lean in (False, True)]
    assert len(LEAN_CALLS) == 1
    pinned = [re.sub(rb"x-deadline-ms: \d+", b"x-deadline-ms: N", head) for head in heads]
    assert pinned[0] == pinned[1]
    sent = [line for line in pinned[1].split(b"\r\n") if line.startswith((b"x-", b"X-"))]
    assert sent == lines


def test_a_header_the_wrapper_also_sets_takes_the_httpx_path(wire, monkeypatch):
    """httpx replaces such a header in place: the lean lane leaves that to it."""
    url, received = wire
    monkeypatch.setattr(tracing, "_propagation_headers", lambda: (("traceparent", "new"),))
    spec = RequestSpec(method="GET", path="/ok", headers=(("Traceparent", "old"), ("X-After", "1")))
    heads = [_sent(url, received, Service(name="t", base_url=url), spec, lean)[1] for lean in (False, True)]
    assert heads[0] == heads[1]
    assert b"\r\ntraceparent: new\r\nx-after: 1\r\n" in heads[1]
    assert LEAN_CALLS == []


def test_a_header_value_httpx_cannot_encode_fails_the_same_way(wire):
    """A non-ASCII value (an API key from the environment, say): httpx refuses to encode
    it; the lean lane leaves the request to httpx, which refuses it the same way."""
    url, received = wire
    svc = Service(name="k", base_url=url)
    spec = RequestSpec(method="GET", path="/ok", headers=(("X-Name", "José"),))
    for lean in (False, True):
        with pytest.raises(UnicodeEncodeError):
            _sent(url, received, svc, spec, lean)
    assert LEAN_CALLS == []
