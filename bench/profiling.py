"""py-spy on a gateway worker while wrk runs, and a text summary of where the time went.

Two recorders run at once on the two workers (they share the load): one writes
the flame graph (SVG) for people, the other raw collapsed stacks that
:func:`summarize` turns into the "top costs" tables for bench/README.md.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start_recording(pid: int, out: Path, *, duration_s: int, fmt: str, rate_hz: int = 100) -> subprocess.Popen[bytes]:
    binary = py_spy()
    if binary is None:
        raise RuntimeError("py-spy is not installed (.venv/bin/pip install py-spy)")
    cmd = [binary, "record", "--pid", str(pid), "--duration", str(duration_s), "--rate", str(rate_hz)]
    cmd += ["--format", fmt, "--output", str(out), "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@dataclass(frozen=True)
class Cost:
    label: str
    samples: int
    share: float  # of all samples


def _label(frame: str, root: Path) -> str:
    """``func (path:line)`` shortened to ``func (module/file.py)``: lines differ per call site."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", str(root) + "/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarize(raw: Path, root: Path, top: int = 15) -> tuple[int, list[Cost], list[Cost], list[Cost]]:
    """Total samples; top functions by self time; by inclusive time; and by package (self time)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_label(frame, root) for frame in stack.split(";") if frame.strip()]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for label in set(frames):
            inclusive[label] += count
        packages[_package(frames[-1])] += count

    def ranked(counter: Counter[str]) -> list[Cost]:
        return [Cost(label, n, n / total if total else 0.0) for label, n in counter.most_common(top)]

    return total, ranked(own), ranked(inclusive), ranked(packages)


def _package(label: str) -> str:
    """The top-level package (or stdlib module) a frame label belongs to."""
    inside = label.rsplit("(", 1)[-1].rstrip(")")
    first = inside.split("/", 1)[0]
    return first.removesuffix(".py") or "?"


def markdown(total: int, own: list[Cost], inclusive: list[Cost], packages: list[Cost]) -> str:
    def table(title: str, costs: list[Cost]) -> list[str]:
        lines = [f"**{title}**", "", "| share | samples | frame |", "|---:|---:|---|"]
        lines += [f"| {c.share:.1%} | {c.samples} | `{c.label}` |" for c in costs]
        return [*lines, ""]

    out = [f"{total} samples (py-spy, 100 Hz, one worker, idle time excluded).", ""]
    out += table("By package (self time)", packages)
    out += table("Top functions by self time", own)
    out += table("Top frames by inclusive time", inclusive)
    return "\n".join(out)
