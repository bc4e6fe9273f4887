"""Round-by-round ratios: each gateway against the reference and the floor of the same round.

A row of ``bench/run.py``'s main table is each server's median round on its own, so a
ratio of two rows can pair rounds measured minutes apart. On this shared VM the machine's
speed moves by up to 1.7x within a minute and, at 10 clients, copies of one gateway differ
by up to 25 % within a round (bench/README.md round 15): a ratio is only worth quoting
between servers measured in the same round, one right after the other. This table pairs
them round by round and reports the median of those paired ratios, their range, and in how
many rounds the gateway met issue 17's CPU bar.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

CPU_RATIO_BAR = 1.5  # issue 17: CPU per request at most 1.5x the hand-written aggregator's
REFERENCE = "reference"
FLOOR = "floor"


@dataclass(frozen=True, slots=True)
class Sample:
    """What one server did in one round at one client count."""

    cpu_ms_per_request: float
    rps: float
    p50_ms: float
    p99_ms: float


# (target, variant, clients) -> one sample per round, in round order; None: no result that round
Rounds = Mapping[tuple[str, str, int], Sequence[Sample | None]]

HEADER = (
    "| gateway variant | clients | rounds | CPU / reference: median | range | rounds <= "
    f"{CPU_RATIO_BAR:g}x | CPU / floor: median | req/s / reference: median | gateway p50 - critical path: "
    "median (max) | gateway p99 - critical path: median (max) | reference p99 - critical path: median (max) |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _one(rounds: Rounds, target: str, clients: int) -> Sequence[Sample | None]:
    """The rounds of the only variant of ``target`` (the reference and the floor have one)."""
    found = [samples for (name, _, count), samples in rounds.items() if name == target and count == clients]
    return found[0] if found else ()


def _pairs(ours: Sequence[Sample | None], theirs: Sequence[Sample | None]) -> list[tuple[Sample, Sample]]:
    """The rounds in which both servers answered (a round without a result pairs with nothing)."""
    return [(a, b) for a, b in zip(ours, theirs, strict=False) if a is not None and b is not None]


def _ratios(pairs: list[tuple[Sample, Sample]], field: str) -> list[float]:
    return [getattr(a, field) / getattr(b, field) for a, b in pairs if getattr(b, field) > 0]


def _over(values: list[float], critical_ms: float) -> str:
    if not values:
        return "—"
    over = [value - critical_ms for value in values]
    return f"{statistics.median(over):+.1f} ({max(over):+.1f})"


def _median_x(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f}x" if ratios else "—"


def row(rounds: Rounds, variant: str, clients: int, critical_ms: float) -> str:
    ours, theirs = rounds[("gateway", variant, clients)], _one(rounds, REFERENCE, clients)
    with_reference = _pairs(ours, theirs)
    cpu = _ratios(with_reference, "cpu_ms_per_request")
    answered = [sample for sample in ours if sample is not None]
    reference = [sample for sample in theirs if sample is not None]
    cells = [
        variant,
        str(clients),
        str(len(with_reference)),
        _median_x(cpu),
        f"{min(cpu):.2f}..{max(cpu):.2f}" if cpu else "—",
        f"{sum(ratio <= CPU_RATIO_BAR for ratio in cpu)} of {len(cpu)}" if cpu else "—",
        _median_x(_ratios(_pairs(ours, _one(rounds, FLOOR, clients)), "cpu_ms_per_request")),
        _median_x(_ratios(with_reference, "rps")),
        _over([sample.p50_ms for sample in answered], critical_ms),
        _over([sample.p99_ms for sample in answered], critical_ms),
        _over([sample.p99_ms for sample in reference], critical_ms),
    ]
    return "| " + " | ".join(cells) + " |"


def table(rounds: Rounds, critical_ms: float) -> list[str]:
    """The markdown table, one row per gateway variant and client count; empty when there is
    no reference to pair with or only one round."""
    if not any(name == REFERENCE for name, _, _ in rounds) or max(map(len, rounds.values()), default=0) < 2:
        return []
    keys = [key for key in rounds if key[0] == "gateway"]
    return [*HEADER.splitlines(), *(row(rounds, variant, clients, critical_ms) for _, variant, clients in keys)]
