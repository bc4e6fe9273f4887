"""The benchmark harness runs end to end (bench/run.py --quick), with no timing assertions.

It drives the reference aggregator over the simulator with wrk for one 1-second
point and checks what a user of the harness sees: a report on stdout and in the
output directory, with a measured row for the reference that completed requests
and had no failures. Speed is measured by `make bench`, never asserted here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)")


def run_bench(script: str, *args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_quick_run_against_the_reference_writes_a_report(tmp_path: Path) -> None:
    done = run_bench(
        "run.py",
        *("--quick", "--targets", "reference", "--clients", "4", "--duration", "1", "--warmup", "0"),
        *("--no-calibrate", "--out", str(tmp_path)),
        timeout=60,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    reports = list(tmp_path.glob("*-quick.md"))
    assert len(reports) == 1
    text = reports[0].read_text()
    assert text in done.stdout
    assert "critical path 225 ms" in text
    header = next(line for line in text.splitlines() if line.startswith("| target |"))
    row = next(line for line in text.splitlines() if line.startswith("| reference |"))
    cells = dict(zip(_cells(header), _cells(row), strict=True))
    assert cells["clients"] == "4"
    assert float(cells["req/s"]) > 0
    assert float(cells["CPU runs/req"]) > 0  # the server's threads were put on a CPU for its requests
    assert float(cells["on-CPU ms/req"]) > 0  # the scheduler's exact count of that time
    assert cells["failed"] == "0"
    assert re.fullmatch(r"\d+ → \d+", cells["RSS/worker MiB before → after"])


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_floor_run_measures_every_layer_and_writes_a_report(tmp_path: Path) -> None:
    done = run_bench(
        "floor.py", "--rounds", "1", "--duration", "1", "--clients", "2", "--out", str(tmp_path), timeout=180
    )

    assert done.returncode == 0, done.stderr[-2000:]
    reports = list(tmp_path.glob("floor-*.md"))
    assert len(reports) == 1
    text = reports[0].read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    requests = [cells[1].strip() for cells in (row.strip("|").split("|") for row in rows)]
    checkout = "POST /v1/checkout/summary"
    assert requests == ["GET /", "GET /healthz", checkout, "GET /healthz", checkout]
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert float(cells[2]) > 0  # req/s
        assert float(cells[3].strip("*")) > 0  # CPU ms per request
        assert cells[6] == "0"  # failed
    assert "Gateway checkout / reference checkout:" in text


def test_a_gateway_variant_gets_its_own_row_beside_all_on(tmp_path: Path) -> None:
    done = run_bench(
        "run.py",
        *("--quick", "--targets", "gateway", "--clients", "2", "--duration", "1", "--warmup", "0"),
        *("--gateway-variant", "no gate:GATEWAY_MAX_IN_FLIGHT=0", "--no-calibrate", "--out", str(tmp_path)),
        timeout=180,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    text = next(tmp_path.glob("*-quick.md")).read_text()
    rows = [line for line in text.splitlines() if line.startswith("| gateway |")]
    variants = {row.strip("|").split("|")[1].strip() for row in rows}
    assert variants == {"all on", "no gate"}
