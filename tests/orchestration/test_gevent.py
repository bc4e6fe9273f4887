"""Under a monkey-patched gevent worker: greenlets run a stage in parallel, the
caller's contextvars follow them, and a dripping body is still cut at the timeout.
Runs in a subprocess, since patching cannot be undone in this one."""

from __future__ import annotations

import textwrap

from tests.support.scripts import run_script

SCRIPT = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import contextvars, json, time
    import httpx, gevent
    from orchestration.clock import SystemClock
    from orchestration.context import RequestContext
    from orchestration.downstream import DownstreamPool, RequestSpec
    from orchestration.plan import Service
    from orchestration.spawn import GeventSpawner, default_spawner
    from orchestration.executor import Executor
    from tests.orchestration.engine_kit import call, endpoint, plan, service
    from tests.orchestration.loopback import serve

    marker = contextvars.ContextVar("marker", default="lost")
    seen = []

    def slow(request):
        seen.append(marker.get())
        gevent.sleep(0.1)
        return httpx.Response(200, json={"ok": True})

    services = [service(n) for n in "abc"]
    the_plan = plan(services)
    pool = DownstreamPool(the_plan.services, lambda s: httpx.MockTransport(slow), environ={})
    executor = Executor(the_plan, pool)
    marker.set("span")
    started = time.perf_counter()
    result = executor.run(endpoint(call("a"), call("b"), call("c")), RequestContext(method="GET", request_id="r"))
    parallel_s = time.perf_counter() - started

    with serve() as url:
        drip_pool = DownstreamPool({"d": Service(name="d", base_url=url)}, clock=SystemClock(), environ={})
        started = time.perf_counter()
        outcome = drip_pool.client("d").attempt(RequestSpec(method="GET", path="/drip"), 0.3)
        drip_s = time.perf_counter() - started

    print(json.dumps({
        "spawner": type(default_spawner()).__name__,
        "partial": result.partial, "parallel_s": parallel_s, "seen": seen,
        "drip_kind": str(outcome.kind), "drip_s": drip_s,
    }))
    """
)


def test_the_engine_under_monkey_patched_gevent():
    report = run_script(SCRIPT, timeout_s=30)
    assert report["spawner"] == "GeventSpawner"
    assert report["partial"] is False
    assert report["parallel_s"] < 0.25
    assert report["seen"] == ["span", "span", "span"]
    assert report["drip_kind"] == "timeout"
    assert 0.25 < report["drip_s"] < 0.6
