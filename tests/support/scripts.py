"""Running a test's Python script in a fresh interpreter (for what cannot be undone in
the test process, such as gevent's monkey-patching) and reading its JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_script(script: str, *args: str, env: Mapping[str, str] | None = None, timeout_s: float = 60) -> Any:
    """Run ``script`` from the repository root; it must exit 0 and print its report as
    JSON on its last line of output, which is returned."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
