"""An in-process gateway starts threads (the adaptive admission limit on the URLconf's
import, the recent-stats flush with telemetry); the suite stops them at its end
(tests/conftest.py), before pytest closes the streams they log to: they logged
"I/O operation on closed file" after the run, once per 10 s."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.scripts import run_script

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
def test_one_request_in_process():
    from django.test import Client

    from gateway_project.observability import recent_stats

    assert Client().get("/healthz").status_code == 200  # imports the URLconf: wiring.install()
    recent_stats()  # what the first recorded request or attempt makes
"""

# pytest in this interpreter, then the threads still alive once it has returned.
SCRIPT = """
import json, sys, threading
import pytest

code = pytest.main(sys.argv[1:])
print(json.dumps({"exit": int(code), "threads": sorted(t.name for t in threading.enumerate())}))
"""


def test_no_gateway_thread_outlives_the_test_run(tmp_path: Path) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")} | {"GATEWAY_MAX_IN_FLIGHT": "auto"}
    # The probe lies outside tests/, so tests/conftest.py comes in as a plugin; pyproject's settings by -c.
    args = ["-q", "-c", "pyproject.toml", "--rootdir", str(ROOT), "-p", "tests.conftest", "-p", "no:randomly"]
    report = run_script(SCRIPT, *args, "-p", "no:cacheprovider", "-p", "no:xdist", str(probe), env=env, timeout_s=120)

    assert report["exit"] == 0
    assert "admission-limit" not in report["threads"] and "recent-stats-flush" not in report["threads"]
