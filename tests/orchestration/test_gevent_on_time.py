"""Under a monkey-patched gevent worker whose loop is blocked by CPU work (another
greenlet hogs it for 600 ms): an answer that arrived 5 ms into a 200 ms attempt is
on time and one that arrived after 400 ms is a timeout (margins wide for a loaded
CI). The downstream is a separate process, so the blocked loop does not delay its
answers. The case where the attempt's timer fires first with the answer waiting is
forced in test_answered_in_time.py."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from tests.support.scripts import run_script

SERVER = textwrap.dedent(
    """
    import socket, sys, threading, time
    answer = b'HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: 11\\r\\n\\r\\n{"ok":true}'
    server = socket.create_server(("127.0.0.1", 0))
    print(server.getsockname()[1], flush=True)
    def handle(conn):
        with conn:
            while request := conn.recv(65536):
                time.sleep(int(request.split(b" ")[1].rsplit(b"/", 1)[1]) / 1000)
                conn.sendall(answer)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()
    """
)

SCRIPT = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import json, sys, time
    import gevent
    from orchestration.downstream import DownstreamPool, RequestSpec
    from orchestration.plan import Service

    port = int(sys.argv[1])
    pool = DownstreamPool({"svc": Service(name="svc", base_url=f"http://127.0.0.1:{port}")}, environ={})
    client = pool.client("svc")
    client.attempt(RequestSpec(method="GET", path="/after/0"), 1.0)  # the connection is open and pooled

    def hog():
        until = time.perf_counter() + 0.6
        while time.perf_counter() < until:  # CPU work that never yields
            pass

    kinds = {}
    for delay_ms in (5, 400):
        attempt = gevent.spawn(client.attempt, RequestSpec(method="GET", path=f"/after/{delay_ms}"), 0.2)
        gevent.spawn(hog)  # runs once the attempt waits for its answer
        kinds[delay_ms] = str(attempt.get().kind)
    print(json.dumps(kinds))
    """
)


@pytest.fixture
def downstream_port() -> Iterator[int]:
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield int(server.stdout.readline())
    finally:
        server.kill()
        server.wait()


def test_a_blocked_loop_does_not_turn_an_answer_in_time_into_a_timeout(downstream_port: int) -> None:
    assert run_script(SCRIPT, str(downstream_port), timeout_s=30) == {"5": "ok", "400": "timeout"}
