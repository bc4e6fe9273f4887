"""What the deployment tests share: a configuration whose endpoints show each kind of
shared state (rate limits, cache, breakers), and checks that several gateway instances
act as one — each step asks one instance and looks at another (contract sections 3, 9)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

BASE = "/v1/deploy"
HEALTH_TOKEN = "deploy-health-token"
LIMIT = 4  # per phase's rate-limited endpoint


def sleeping(seconds: float, value: str) -> Callable[[Any], tuple[int, Any]]:
    def answer(_: Any) -> tuple[int, Any]:
        time.sleep(seconds)
        return 200, {"value": value}

    return answer


def config_yaml(work_url: str, fragile_url: str, phases: Sequence[str] = ("one", "two")) -> str:
    def call(service: str, path: str) -> dict[str, Any]:
        return {"id": "work", "service": service, "stage": 1, "method": "GET", "path": path}

    endpoints: list[dict[str, Any]] = [
        {
            "name": "quick",
            "method": "GET",
            "path": "/quick",
            "purpose": "The steady load",
            "timeout_ms": 8000,
            "calls": [call("work", "/quick")],
            "response": {"kind": "quick", "value": "{{ work.value }}"},
        }
    ]
    services: dict[str, Any] = {"work": {"base_url": work_url, "owner": "Work Team", "timeout_ms": 6000}}
    for phase in phases:
        services[f"fragile_{phase}"] = {
            "base_url": fragile_url,
            "owner": "Fragile Team",
            "timeout_ms": 2000,
            "breaker": {"failure_threshold": 3, "window_s": 600, "open_s": 600, "half_open_probes": 1},
        }
        endpoints += [
            {
                "name": f"limited_{phase}",
                "method": "GET",
                "path": f"/limited-{phase}",
                "purpose": "A rate limit every instance counts together",
                "timeout_ms": 8000,
                "rate_limits": [{"scope": "ip", "limit": LIMIT, "window_s": 3600}],
                "calls": [call("work", "/quick")],
                "response": {"value": "{{ work.value }}"},
            },
            {
                "name": f"cached_{phase}",
                "method": "GET",
                "path": f"/cached-{phase}",
                "purpose": "An answer every instance shares",
                "timeout_ms": 8000,
                "cache": {"ttl_s": 600, "scope": "shared"},
                "calls": [call("work", f"/cached-{phase}")],
                "response": {"value": "{{ work.value }}"},
            },
            {
                "name": f"fragile_{phase}",
                "method": "GET",
                "path": f"/fragile-{phase}",
                "purpose": "A breaker every instance shares",
                "timeout_ms": 8000,
                "calls": [call(f"fragile_{phase}", "/broken")],
                "response": {"value": "{{ work.value }}"},
            },
        ]
    # The soak's flaky service: optional, with a breaker that opens and recovers quickly.
    services["flaky"] = {
        "base_url": fragile_url,
        "owner": "Flaky Team",
        "timeout_ms": 1000,
        "breaker": {"failure_threshold": 5, "window_s": 10, "open_s": 3, "half_open_probes": 1},
    }
    endpoints.append(
        {
            "name": "mixed",
            "method": "GET",
            "path": "/mixed",
            "purpose": "A required call and an optional flaky one",
            "timeout_ms": 8000,
            "calls": [
                call("work", "/quick"),
                {"id": "extra", "service": "flaky", "stage": 1, "path": "/flaky", "required": False, "fallback": None},
            ],
            "response": {"value": "{{ work.value }}", "extra": "{{ extra }}"},
        }
    )
    document = {
        "version": 1,
        "layer": {"name": "Deploy", "owner": "Platform Team", "base_path": BASE, "auth": {"type": "none"}},
        "services": services,
        "endpoints": endpoints,
    }
    return json.dumps(document, indent=2)


def get(base_url: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(base_url + path, headers=headers, timeout=10)


def assert_rate_limit_shared(instances: Sequence[str], phase: str) -> None:
    """LIMIT requests spread over the instances pass, the next one (on any instance) is 429."""
    statuses = [get(instances[i % len(instances)], f"{BASE}/limited-{phase}").status_code for i in range(LIMIT + 2)]
    assert statuses == [200] * LIMIT + [429, 429], statuses


def assert_cache_shared(instances: Sequence[str], phase: str, hits: Callable[[], int]) -> None:
    """A miss on one instance fills the entry every other one answers from."""
    before = hits()
    first = get(instances[0], f"{BASE}/cached-{phase}")
    assert (first.status_code, first.headers.get("X-Cache")) == (200, "MISS"), first.text
    for other in instances[1:]:
        reply = get(other, f"{BASE}/cached-{phase}")
        assert (reply.status_code, reply.headers.get("X-Cache")) == (200, "HIT"), reply.text
    assert hits() - before == 1, "one downstream call for all instances"


def assert_breaker_shared(instances: Sequence[str], phase: str, hits: Callable[[], int]) -> None:
    """Three failures through the first instance open the breaker every instance sees."""
    for _ in range(3):
        assert get(instances[0], f"{BASE}/fragile-{phase}").status_code >= 500
    before = hits()
    for other in instances[1:]:
        health = get(other, "/health/downstream", {"X-Health-Token": HEALTH_TOKEN}).json()
        assert health["services"][f"fragile_{phase}"]["breaker"] == "open", health
        assert get(other, f"{BASE}/fragile-{phase}").status_code >= 500
    assert hits() == before, "an open breaker touches no network, on every instance"


class SteadyLoad:
    """``clients`` threads, each with a keep-alive client, sending GETs of ``paths`` round the
    ``urls`` back to back; any answer but 200 (or one ``expect`` refuses, or any transport
    error) is a failure."""

    def __init__(
        self,
        urls: Sequence[str],
        paths: Sequence[str],
        clients: int = 4,
        expect: Callable[[httpx.Response], bool] = lambda reply: True,
    ) -> None:
        import threading
        from collections import Counter

        self.urls, self.paths, self.expect = list(urls), list(paths), expect
        self.stop_event = threading.Event()
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, index: int) -> None:
        n = index
        with httpx.Client(timeout=15) as client:
            while not self.stop_event.is_set():
                url = self.urls[n % len(self.urls)] + self.paths[n % len(self.paths)]
                n += 1
                try:
                    reply = client.get(url)
                    ok = reply.status_code == 200 and self.expect(reply)
                    outcome = "ok" if ok else f"{reply.status_code} {url} {reply.text[:200]}"
                except httpx.HTTPError as error:
                    outcome = f"{type(error).__name__}: {url} {error}"
                with self._lock:
                    self.outcomes["ok" if outcome == "ok" else "failed"] += 1
                    if outcome != "ok":
                        self.failures.append(outcome)

    def total(self) -> int:
        with self._lock:
            return sum(self.outcomes.values())
