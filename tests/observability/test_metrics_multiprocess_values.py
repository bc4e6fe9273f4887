"""The lean multiprocess value class (``orchestration.observability.metrics``) shows
on /metrics exactly what prometheus_client's own class shows: same series, same
counts, merged across processes, correct after a fork, exact under real threads.

Each case runs in a fresh interpreter: the value class is chosen once per process,
at import, before any metric exists (as in a gunicorn worker).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

from tests.support.scripts import run_script

# One aggregate request's worth of writes, and then some: every series family we
# write, two label sets per family, values landing in several buckets.
WRITES = textwrap.dedent(
    """
    from orchestration.observability import metrics as m
    for duration in (0.0004, 0.003, 0.003, 0.09, 0.7, 7.0):
        for service in ("cart", "tax"):
            m.observe_attempt(service=service, endpoint="summary", call=service, outcome="ok", duration_s=duration)
    m.observe_attempt(service="tax", endpoint="summary", call="tax", outcome="5xx", duration_s=0.2)
    m.observe_attempt(service="tax", endpoint="summary", call="tax", outcome="circuit_open", duration_s=0.0)
    for status, partial in ((200, False), (200, True), (502, False)):
        m.observe_request(endpoint="summary", method="POST", status=status, duration_s=0.12, partial=partial)
    m.observe_breaker_transition(service="tax", from_state="closed", to_state="open")
    m.observe_cache_lookup(endpoint="summary", hit=True)
    m.observe_rate_limit_rejection(scope="user")
    m.observe_store_error(store="rate_limit")
    """
)

COLLECT = textwrap.dedent(
    """
    import json
    from prometheus_client import CollectorRegistry, values
    from prometheus_client.multiprocess import MultiProcessCollector
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    samples = sorted(
        [s.name, sorted(s.labels.items()), s.value]
        for family in registry.collect() if not family.name.startswith("warm")
        for s in family.samples
    )
    print(json.dumps({"value_class": values.ValueClass.__name__, "samples": samples}))
    """
)


def _run(script: str, multiproc_dir: Path, *, gevent: bool = True) -> dict[str, Any]:
    prelude = "from gevent import monkey\nmonkey.patch_all()\n" if gevent else ""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    result: dict[str, Any] = run_script(prelude + script, env=env, timeout_s=120)
    return result


def _stock_first() -> str:
    """A value written through prometheus_client's class before our module is imported:
    the module must then leave the stock class in place (two writers on one file
    would corrupt it)."""
    return "from prometheus_client import Counter\nCounter('warm', 'w').inc()\n"


def test_same_series_and_counts_as_prometheus_client(tmp_path: Path) -> None:
    lean_dir, stock_dir = tmp_path / "lean", tmp_path / "stock"
    lean_dir.mkdir()
    stock_dir.mkdir()

    lean = _run(WRITES + COLLECT, lean_dir)
    stock = _run(_stock_first() + WRITES + COLLECT, stock_dir)

    assert lean["value_class"] == "_LeanMmapValue"
    assert stock["value_class"] == "MmapedValue"
    assert lean["samples"] == stock["samples"]
    names = {name for name, _, _ in lean["samples"]}
    assert "gateway_downstream_duration_seconds_bucket" in names and "gateway_requests_total" in names


def test_two_processes_merge_like_two_workers(tmp_path: Path) -> None:
    _run(WRITES + COLLECT, tmp_path)
    merged = _run(WRITES + COLLECT, tmp_path)
    single_dir = tmp_path / "single"
    single_dir.mkdir()
    single = _run(WRITES + COLLECT, single_dir)

    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per process, as prometheus_client
    doubled = [[name, labels, value * 2] for name, labels, value in single["samples"]]
    assert merged["samples"] == doubled


def test_a_forked_child_writes_its_own_files_and_the_parent_keeps_its_counts(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os
        from orchestration.observability import metrics as m
        def attempt():
            m.observe_attempt(service="cart", endpoint="e", call="c", outcome="ok", duration_s=0.01)
        attempt()
        pid = os.fork()
        if pid == 0:
            attempt(); attempt()
            os._exit(0)
        os.waitpid(pid, 0)
        attempt()
        """
    )
    result = _run(script + COLLECT, tmp_path, gevent=False)

    counts = {
        name: value
        for name, labels, value in result["samples"]
        if name in ("gateway_downstream_attempts_total", "gateway_downstream_duration_seconds_count")
    }
    assert counts == {"gateway_downstream_attempts_total": 4, "gateway_downstream_duration_seconds_count": 4}
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # parent and child


def test_real_threads_lose_no_increment(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import threading
        from orchestration.observability import metrics as m
        def hammer():
            for _ in range(20000):
                m.observe_store_error(store="s")
        threads = [threading.Thread(target=hammer) for _ in range(6)]
        for t in threads: t.start()
        for t in threads: t.join()
        """
    )
    result = _run(script + COLLECT, tmp_path, gevent=False)

    assert result["value_class"] == "_LockedLeanMmapValue"
    (total,) = [v for name, _, v in result["samples"] if name == "gateway_store_errors_total"]
    assert total == 6 * 20000


def test_a_gunicorn_worker_uses_the_lean_class_for_django_prometheus_too(tmp_path: Path) -> None:
    """Import order matters: the swap only happens if no metric value exists yet.
    A worker imports the WSGI app after gevent's patch; django-prometheus's
    metrics are created after ours, so they get the lean class as well."""
    script = textwrap.dedent(
        """
        import json, os
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
        from gateway_project.wsgi import application
        from django_prometheus.middleware import Metrics
        from prometheus_client import values
        print(json.dumps({
            "value_class": values.ValueClass.__name__,
            "django_prometheus": type(Metrics.get_instance().requests_total._value).__name__,
        }))
        """
    )
    overrides = {"DJANGO_SECRET_KEY": "test-secret", "GATEWAY_METRICS": "on"}
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    try:
        result = _run(script, tmp_path)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    assert result == {"value_class": "_LeanMmapValue", "django_prometheus": "_LeanMmapValue"}
