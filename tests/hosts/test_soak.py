"""The soak (``make soak``): the two-host topology (tests/hosts/topology.py) under mixed load
through HAProxy for GATEWAY_SOAK_S seconds (600 by default), while the optional "flaky"
service fails and recovers every 30 s and its breaker opens and closes. Counts: requests,
lost ones (anything but 200: none allowed), partial answers, breaker transitions seen, and
the workers' resident memory after warm-up and at the end (flat: at most 15 % + 8 MiB more).
The numbers go to test-artifacts/soak-<time>.json and the test's output."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import httpx

from tests.e2e import deploy_support as deploy
from tests.hosts.topology import LAN, Topology, topology  # noqa: F401 - the fixture
from tests.support import netns

ROOT = Path(__file__).resolve().parents[2]
DURATION_S = float(os.environ.get("GATEWAY_SOAK_S", "600"))
FLIP_S = 30.0
WARM_UP_S = min(60.0, DURATION_S / 5)


def rss_mib(pids: list[int]) -> float:
    """Mean resident memory of ``pids`` (statm's second field, in pages)."""
    page = os.sysconf("SC_PAGE_SIZE")
    sizes = [int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page for pid in pids]
    return sum(sizes) / len(sizes) / 2**20


def test_soak_mixed_load_with_a_failing_and_recovering_service(topology: Topology) -> None:  # noqa: F811
    failing = threading.Event()
    topology.fragile.routes["/flaky"] = lambda _: (503, {"down": True}) if failing.is_set() else (200, {"ok": True})
    stop = threading.Event()
    flips = 0

    def flipper() -> None:
        nonlocal flips
        while not stop.wait(FLIP_S):
            if failing.is_set():
                failing.clear()
            else:
                failing.set()
            flips += 1

    paths = [f"{deploy.BASE}/quick", f"{deploy.BASE}/cached-one", f"{deploy.BASE}/mixed", f"{deploy.BASE}/mixed"]
    partial_seen = 0
    with netns.entered(LAN.name("lb")):
        with deploy.SteadyLoad([topology.proxy_url], paths, clients=6) as load:
            flip_thread = threading.Thread(target=flipper, daemon=True)
            flip_thread.start()
            time.sleep(WARM_UP_S)
            pids = topology.worker_pids()
            rss_start, started_at, count_start = rss_mib(pids), time.monotonic(), load.total()
            while time.monotonic() - started_at < DURATION_S - WARM_UP_S:
                time.sleep(5)
                reply = httpx.get(topology.proxy_url + f"{deploy.BASE}/mixed", timeout=10)
                partial_seen += reply.json().get("extra") is None
            rss_end = rss_mib(pids)
            stop.set()
            total, measured = load.total(), load.total() - count_start
        health = httpx.get(
            topology.urls[0] + "/health/downstream", headers={"X-Health-Token": deploy.HEALTH_TOKEN}, timeout=10
        ).json()
    assert pids == topology.worker_pids(), "no worker died or was replaced"
    report = {
        "duration_s": DURATION_S,
        "requests": total,
        "requests_per_s_after_warm_up": round(measured / (DURATION_S - WARM_UP_S), 1),
        "lost": len(load.failures),
        "flaky_flips": flips,
        "mixed_samples_partial": partial_seen,
        "flaky_hits": topology.fragile.hits["/flaky"],
        "rss_per_worker_mib": {"after_warm_up": round(rss_start, 1), "end": round(rss_end, 1)},
        "workers": len(pids),
        "breaker_at_end": health["services"]["flaky"]["breaker"],
    }
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    print("soak:", json.dumps(report))
    assert load.failures == [], f"{len(load.failures)} lost of {total}: {load.failures[:5]}"
    assert flips >= 2 or DURATION_S < 3 * FLIP_S
    assert partial_seen > 0 or DURATION_S < 3 * FLIP_S, "the flaky service's failures were seen (partial answers)"
    assert rss_end <= rss_start * 1.15 + 8, report
