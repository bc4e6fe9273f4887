"""CPU of a 20-item for_each against 20 single calls (issue 18's bar: under 2x one call per element).

Engine only, MockTransport downstreams answering at once, gevent greenlets as in a
served worker. Run: ``python bench/fanout.py``. Prints CPU microseconds per request of
one call, per element of a 20-item fan-out (max_parallel 4), and their ratio.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from orchestration.context import RequestContext  # noqa: E402
from orchestration.downstream import DownstreamPool  # noqa: E402
from orchestration.executor import Executor  # noqa: E402
from orchestration.plan import Call, Endpoint, Layer, Plan, Service  # noqa: E402
from orchestration.spawn import GeventSpawner  # noqa: E402
from orchestration.templates import compile_path_template, compile_template  # noqa: E402

ITEMS = [{"sku": f"SKU-{n}"} for n in range(20)]


def handle(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"sku": request.url.path.rsplit("/", 1)[1], "price": 100})


def main(rounds: int = 400) -> None:
    service = Service(name="catalog", base_url="http://catalog.test")
    plan = Plan("bench", Layer(name="b", base_path="/"), {"catalog": service}, ())
    pool = DownstreamPool(plan.services, lambda _s: httpx.MockTransport(handle), environ={})
    executor = Executor(plan, pool, spawner=GeventSpawner())
    one = Call(id="p", service="catalog", stage=1, method="GET", path=compile_path_template("/products/SKU-1"))
    fan = Call(
        id="p",
        service="catalog",
        stage=1,
        method="GET",
        path=compile_path_template("/products/{{ item.sku }}"),
        for_each=compile_template("{{ request.body.items }}"),
        max_parallel=4,
    )
    request = RequestContext(method="POST", body={"items": ITEMS})
    single = Endpoint("one", "POST", "/one", (one,), compile_template("{{ p }}"))
    fanned = Endpoint("fan", "POST", "/fan", (fan,), compile_template("{{ p }}"))
    for endpoint in (single, fanned):  # warm up
        for _ in range(50):
            executor.run(endpoint, request)
    started = time.process_time()
    for _ in range(rounds * 20):
        executor.run(single, request)
    per_call = (time.process_time() - started) / (rounds * 20)
    started = time.process_time()
    for _ in range(rounds):
        executor.run(fanned, request)
    per_element = (time.process_time() - started) / (rounds * 20)
    print(f"one call: {per_call * 1e6:.1f} us CPU per request")
    print(f"for_each of 20: {per_element * 1e6:.1f} us CPU per element")
    print(f"ratio: {per_element / per_call:.2f} (bar: under 2)")


if __name__ == "__main__":
    main()
