"""Under pytest-xdist each worker's in-process gateway keeps its Redis state (breakers,
stats) in a database of its own (tests/conftest.py): two workers sharing the fixed
``gateway:breaker:{shipping}`` keys forced open and reset each other's breakers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Run on every worker (--dist each): which Redis database its gateway and its Django cache use.
PROBE = """
import json, os
from pathlib import Path

def test_report_redis_dbs():
    from django.core.cache import cache
    from gateway_project import wiring

    report = {
        "gateway": wiring.redis_client().connection_pool.connection_kwargs["db"],
        "cache": cache.client.get_client().connection_pool.connection_kwargs["db"],
    }
    worker = os.environ["PYTEST_XDIST_WORKER"]
    Path(os.environ["PROBE_REPORT_DIR"], worker).write_text(json.dumps(report))
"""


def test_each_xdist_worker_has_a_redis_database_of_its_own(tmp_path: Path) -> None:
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("REDIS_URL is not set: the in-process gateway keeps no state in Redis")
    probe, reports = tmp_path / "test_probe.py", tmp_path / "reports"
    probe.write_text(PROBE, encoding="utf-8")
    reports.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")} | {"PROBE_REPORT_DIR": str(reports)}
    # The probe lies outside tests/, so tests/conftest.py comes in as a plugin; pyproject's settings by -c.
    command = [sys.executable, "-m", "pytest", "-q", "-c", "pyproject.toml", "--rootdir", str(ROOT)]
    command += ["-p", "tests.conftest", "-p", "no:randomly", "-p", "no:cacheprovider", "-n", "2", "--dist", "each"]
    done = subprocess.run([*command, str(probe)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]

    seen = {path.name: json.loads(path.read_text()) for path in reports.iterdir()}
    base = int(redis_url.rsplit("/", 1)[-1] or 0)
    assert seen["gw0"] == {"gateway": base, "cache": base}
    assert seen["gw1"]["gateway"] == seen["gw1"]["cache"] != base
