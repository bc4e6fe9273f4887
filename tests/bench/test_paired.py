"""Round-by-round ratios: a gateway paired with the reference and the floor of the same round."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import paired
from paired import Sample


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip("|").split("|")]


def _by_header(lines: list[str]) -> list[dict[str, str]]:
    names = _cells(lines[0])
    return [dict(zip(names, _cells(line), strict=True)) for line in lines[2:]]


def test_ratios_pair_the_servers_of_one_round_not_their_medians() -> None:
    # The machine slows down in round 2: each server's own median round would pair the gateway's
    # 2.0 with the reference's 2.0 (1.0x); paired by round the gateway costs 2x in every round.
    rounds = {
        ("gateway", "all on", 10): [Sample(2.0, 40.0, 240.0, 260.0), Sample(4.0, 40.0, 250.0, 300.0)],
        ("reference", "aiohttp", 10): [Sample(1.0, 40.0, 230.0, 250.0), Sample(2.0, 40.0, 232.0, 270.0)],
        ("floor", "bare", 10): [Sample(0.5, 40.0, 229.0, 240.0), Sample(1.0, 40.0, 231.0, 245.0)],
    }
    [row] = _by_header(paired.table(rounds, critical_ms=225.0))
    assert row["gateway variant"] == "all on" and row["clients"] == "10" and row["rounds"] == "2"
    assert row["CPU / reference: median"] == "2.00x"
    assert row["range"] == "2.00..2.00"
    assert row["rounds <= 1.5x"] == "0 of 2"
    assert row["CPU / floor: median"] == "4.00x"
    assert row["req/s / reference: median"] == "1.00x"
    assert row["gateway p50 - critical path: median (max)"] == "+20.0 (+25.0)"
    assert row["gateway p99 - critical path: median (max)"] == "+55.0 (+75.0)"
    assert row["reference p99 - critical path: median (max)"] == "+35.0 (+45.0)"


def test_a_round_without_a_result_pairs_with_nothing_and_each_variant_gets_a_row() -> None:
    rounds = {
        ("gateway", "all on", 10): [Sample(3.0, 40.0, 240.0, 260.0), None, Sample(1.2, 40.0, 240.0, 260.0)],
        ("gateway", "before", 10): [Sample(1.4, 40.0, 240.0, 260.0)] * 3,
        ("reference", "aiohttp", 10): [Sample(1.0, 40.0, 230.0, 250.0)] * 3,
    }
    rows = _by_header(paired.table(rounds, critical_ms=225.0))
    assert [row["gateway variant"] for row in rows] == ["all on", "before"]
    assert rows[0]["rounds"] == "2"
    assert rows[0]["range"] == "1.20..3.00"
    assert rows[0]["rounds <= 1.5x"] == "1 of 2"
    assert rows[0]["CPU / floor: median"] == "—"  # no floor in this run
    assert rows[1]["rounds <= 1.5x"] == "3 of 3"


def test_no_table_without_a_reference_or_with_one_round() -> None:
    gateway = {("gateway", "all on", 10): [Sample(2.0, 40.0, 240.0, 260.0)] * 3}
    assert paired.table(gateway, critical_ms=225.0) == []
    one_round = {
        ("gateway", "all on", 10): [Sample(2.0, 40.0, 240.0, 260.0)],
        ("reference", "aiohttp", 10): [Sample(1.0, 40.0, 230.0, 250.0)],
    }
    assert paired.table(one_round, critical_ms=225.0) == []
