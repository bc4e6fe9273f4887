"""Gateway configurations to measure: the base one, and one per feature turned off.

Each variant is a transform of examples/checkout.yaml (base URLs pointed at the
benchmark's simulator) plus environment variables. A feature whose off switch
the gateway does not have yet is reported "n/a" with the reason, never
measured as if it were off: the switch is looked for in the gateway's source.

The base ("all on") keeps checkout.yaml's rate-limit rules but raises every
limit to 10^9: the benchmark sends all requests as one user from one IP, so the
real limits (50/min per user and endpoint) would turn the run into a 429
benchmark; raised limits are still checked on every request. Its bulkheads are raised
the same way (round 11): the template's shipping bulkhead (50 calls a process) fills at
~100 requests in flight per worker, and a request that finds it full answers partial,
without its shipping call — cheaper than a whole answer, so at 200 clients a third of the
gateway's answers skipped a call the reference always makes. Raised, every call still
takes and gives back its slot.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "checkout.yaml"
GATEWAY_SOURCES = ("gateway_project", "orchestration", "registry")
UNREACHED_LIMIT = 10**9
UNREACHED_BULKHEAD = 10_000  # calls in flight a process: more than any point's clients

Config = dict[str, Any]


@dataclass(frozen=True)
class Variant:
    name: str
    transform: Callable[[Config], Config] = lambda config: config
    env: dict[str, str] = field(default_factory=dict)
    jwt: bool = True  # whether wrk sends a token
    unavailable: str | None = None  # why the gateway cannot run this variant yet


@cache
def _gateway_source() -> str:
    parts = []
    for package in GATEWAY_SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


def source_mentions(text: str) -> bool:
    return text in _gateway_source()


def base_config(ports: dict[str, int], host: str = "127.0.0.1") -> Config:
    """checkout.yaml pointed at the simulator, with rate limits and bulkheads that are checked but never reached."""
    config: Config = yaml.safe_load(EXAMPLE.read_text())
    for name, service in config["services"].items():
        if name in ports:
            service["base_url"] = f"http://{host}:{ports[name]}"
    for rule in _rate_limit_rules(config):
        rule["limit"] = UNREACHED_LIMIT
    for service in config["services"].values():
        if service.get("bulkhead"):
            service["bulkhead"]["max_concurrent"] = UNREACHED_BULKHEAD
    return config


def _rate_limit_rules(config: Config) -> list[dict[str, Any]]:
    rules = list(config["layer"].get("rate_limits") or [])
    for endpoint in config.get("endpoints") or []:
        rules.extend(endpoint.get("rate_limits") or [])
    return rules


def _auth_none(config: Config) -> Config:
    config = copy.deepcopy(config)
    config["layer"]["auth"] = {"type": "none"}
    # Without client auth there is no user to key an entry by (`gateway check` refuses
    # scope: user): one entry for every client, as it was served before the check.
    for endpoint in config.get("endpoints") or []:
        cache = endpoint.get("cache") or {}
        if cache.get("ttl_s") and cache.get("scope", "user") == "user":
            cache["scope"] = "shared"
    return config


def _no_rate_limits(config: Config) -> Config:
    config = copy.deepcopy(config)
    config["layer"].pop("rate_limits", None)
    for endpoint in config.get("endpoints") or []:
        endpoint.pop("rate_limits", None)
    return config


def _env_switch(name: str, candidates: tuple[tuple[str, str], ...], what: str) -> Variant:
    """A variant turned off by the first env var of ``candidates`` that the gateway reads."""
    for variable, value in candidates:
        if source_mentions(variable):
            return Variant(name, env={variable: value})
    wanted = " or ".join(f"{variable}={value}" for variable, value in candidates)
    return Variant(name, unavailable=f"n/a: the gateway has no switch for {what} yet (looked for {wanted})")


def _access_log_off() -> Variant:
    variant = _env_switch("access log off", (("GATEWAY_ACCESS_LOG", "off"),), "its access log")
    if variant.unavailable is None:
        return variant
    # No dedicated switch: the access line is the only per-request INFO line, so raising the
    # level to WARNING removes it (and nothing else on the hot path). Say so in the name.
    if source_mentions('getLogger("gateway.access")') and source_mentions("GATEWAY_LOG_LEVEL"):
        return Variant("access log off (GATEWAY_LOG_LEVEL=WARNING)", env={"GATEWAY_LOG_LEVEL": "WARNING"})
    return variant


def resilience_variant() -> Variant:
    """Every issue-14 resilience feature configured on the checkout, none triggered
    (``bench/resilience_config.py``): their cost on a real server, beside "all on"."""
    from resilience_config import with_features  # bench/resilience_config.py

    return Variant("resilience features", transform=with_features)


def variants(features: bool, redis_variant_url: str | None = None) -> list[Variant]:
    """The base variant; with ``features``, one more per feature turned off, and with
    ``redis_variant_url`` one with every feature on and the shared state (breakers,
    rate-limit counters, cache, configuration version) in that Redis database."""
    base = Variant("all on")
    if not features:
        return [base]
    in_redis = [Variant("all on, state in Redis", env={"REDIS_URL": redis_variant_url})] if redis_variant_url else []
    rate_limits = Variant("rate limits off", transform=_no_rate_limits)
    if not _has_rate_limiter():
        rate_limits = Variant("rate limits off", unavailable="n/a: the gateway does not enforce rate limits yet")
    return [
        base,
        Variant("auth none", transform=_auth_none, jwt=False),
        rate_limits,
        _env_switch("metrics off", (("GATEWAY_METRICS", "off"), ("GATEWAY_METRICS_ENABLED", "0")), "its metrics"),
        _env_switch("tracing off", (("OTEL_SDK_DISABLED", "true"),), "tracing"),
        _access_log_off(),
        *in_redis,
    ]


def redis_url_of_variant(redis_url: str, index: int) -> str:
    """``--redis-url`` for the ``index``-th gateway variant of a run (0: the URL as given):
    its database number moved ``index`` on (mod 16), so variants running side by side keep
    their breakers, rate-limit counters and caches apart (all use the same keys, and one
    variant's overload would open the others' breakers). ``redis://host:port/N`` (no N: 0)
    and ``unix:///path?db=N``."""
    if index == 0:
        return redis_url
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":  # the database in the query (urlunsplit would drop the empty host's //)
        query = dict(parse_qsl(parts.query))
        query["db"] = str((int(query.get("db") or 0) + index) % 16)
        return f"{redis_url.partition('?')[0]}?{urlencode(query)}"
    path = parts.path.lstrip("/")
    return urlunsplit(parts._replace(path=f"/{((int(path) if path else 0) + index) % 16}"))


def _has_rate_limiter() -> bool:
    """A rate-limiter module exists in the engine (orchestration/**/*rate*.py)."""
    return any("rate" in path.name for path in (ROOT / "orchestration").rglob("*.py"))


def write_config(config: Config, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
