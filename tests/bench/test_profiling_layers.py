"""bench/profiling.py's layer table: a sample counts for the innermost frame that names a layer."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import profiling  # noqa: E402

VIEW = "aggregate (/srv/orchestration/web/aggregate.py:40)"
DJANGO = "WSGIHandler.__call__ (/venv/site-packages/django/core/handlers/wsgi.py:124)"
ATTEMPT = "DownstreamClient.attempt (orchestration/downstream/client.py:92)"
TRANSPORT = "Urllib3Transport.handle_request (orchestration/downstream/transport.py:220)"
RECV = "socket.recvmsg (gevent/_socket3.py:380)"
IDLE = "_WorkerGreenlet.run (gevent/threadpool.py:10)"


def test_innermost_named_frame_decides_and_idle_samples_are_left_out(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "\n".join(
            [
                f"{DJANGO};{VIEW};{ATTEMPT};{TRANSPORT};{RECV} 6",  # under the transport: transport
                f"{DJANGO};{VIEW};{ATTEMPT} 2",  # the attempt's own frame
                f"{DJANGO};{VIEW} 1",
                f"{DJANGO} 1",
                f"{IDLE};acquire (gevent/_threading.py:36) 50",  # a pool thread waiting
                "garbage line",
            ]
        )
        + "\n"
    )

    costs = {cost.label: (cost.samples, round(cost.share, 2)) for cost in profiling.layers(raw)}

    assert costs == {
        "call: transport, sockets": (6, 0.6),
        "call: breaker, bulkhead, headers, outcome": (2, 0.2),
        "view: request parsing, context, error mapping": (1, 0.1),
        "Django: request, middleware, response": (1, 0.1),
    }
    table = profiling.layers_markdown(profiling.layers(raw))
    assert "| 60.0% | 6 | call: transport, sockets |" in table
