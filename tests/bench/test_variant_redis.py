"""bench/run.py with --redis-url: each gateway variant keeps its state in a Redis database
of its own (they all use the same keys, so one variant's overload opened the others'
breakers and spent their rate-limit counters)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.support.redis import redis_url_for_db

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import variants  # noqa: E402


def test_each_variant_moves_the_database_number_on() -> None:
    assert variants.redis_url_of_variant("redis://:pw@h:6380/3", 0) == "redis://:pw@h:6380/3"
    assert variants.redis_url_of_variant("redis://:pw@h:6380/3", 2) == "redis://:pw@h:6380/5"
    assert variants.redis_url_of_variant("redis://h:6379", 1) == "redis://h:6379/1"
    assert variants.redis_url_of_variant("redis://h:6379/15", 1) == "redis://h:6379/0"
    assert variants.redis_url_of_variant("unix:///run/redis.sock?db=4", 1) == "unix:///run/redis.sock?db=5"


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)")
def test_two_gateway_variants_keep_their_state_in_two_databases(tmp_path: Path) -> None:
    if not os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL is not set")
    base_db = int(os.environ["REDIS_URL"].rsplit("/", 1)[-1] or 0)
    # Two databases tests/e2e flushes at the start of its own modules (changes, bench14).
    first, second = (redis.Redis.from_url(redis_url_for_db((base_db + n) % 16)) for n in (9, 10))
    try:
        first.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis not reachable: {error}")
    first.flushdb()
    second.flushdb()

    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            *("--quick", "--targets", "gateway", "--latency-scale", "0", "--no-calibrate"),
            *("--clients", "2", "--duration", "1", "--warmup", "0", "--out", str(tmp_path)),
            *("--gateway-variant", "twin:GATEWAY_LOG_LEVEL=WARNING"),
            *("--redis-url", redis_url_for_db((base_db + 9) % 16)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert "| gateway | all on | 2 |" in done.stdout, done.stdout[-2000:]
    assert "gateway [twin]    2 clients:" in done.stderr, done.stderr[-2000:]  # measured (the report lists "all on")
    # Each gateway recorded the calls it made (the console's recent figures) in its own database.
    assert first.exists("gateway:stats:last:cart") and second.exists("gateway:stats:last:cart")
    first.flushdb()
    second.flushdb()
