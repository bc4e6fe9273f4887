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
    if fmt == "raw":
        cmd.append("--full-filenames")  # summarize() groups by package, which short names hide
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@dataclass(frozen=True)
class Cost:
    label: str
    samples: int
    share: float  # of all samples


STDLIB = re.compile(r"^.*/python3\.\d+/")


def _label(frame: str, root: Path) -> str:
    """``func (/full/path.py:line)`` as ``func (package/file.py)``: lines differ per call site."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(str(root) + "/"):
        path = path[len(str(root)) + 1 :]
    else:
        path = STDLIB.sub("", path)
    return f"{match['func']} ({path})"


@dataclass(frozen=True)
class Summary:
    total: int
    packages_self: list[Cost]
    packages_inclusive: list[Cost]
    functions_self: list[Cost]
    project_inclusive: list[Cost]


def summarize(raw: Path, root: Path, top: int = 20) -> Summary:
    """Total samples; top functions by self time; the project's frames by inclusive time; packages by inclusive time.

    A package's inclusive share is the share of samples whose stack passes
    through it anywhere: "httpx 53 %" means half the worker's CPU was spent
    under some httpx call (its own code and whatever it called).
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    packages_own: Counter[str] = Counter()
    total = 0
    project = _project_packages(root)
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
            if _package(label) in project:
                inclusive[label] += count
        for package in {_package(label) for label in frames}:
            packages[package] += count
        packages_own[_package(frames[-1])] += count

    def ranked(counter: Counter[str]) -> list[Cost]:
        return [Cost(label, n, n / total if total else 0.0) for label, n in counter.most_common(top)]

    return Summary(total, ranked(packages_own), ranked(packages), ranked(own), ranked(inclusive))


def _project_packages(root: Path) -> set[str]:
    return {path.name for path in root.iterdir() if (path / "__init__.py").exists()}


def _package(label: str) -> str:
    """The top-level package (or stdlib module) a frame label belongs to."""
    inside = label.rsplit("(", 1)[-1].rstrip(")")
    first = inside.split("/", 1)[0]
    return first.removesuffix(".py") or "?"


# Where a request's CPU goes, by layer: (function name, file path ending, layer). A sample
# belongs to the innermost frame of its stack that names a layer, so a downstream call's
# transport is not counted again as "executor". Idle samples (a thread waiting) are left out.
LAYERS: tuple[tuple[str, str, str], ...] = (
    ("WSGIHandler.__call__", "django/core/handlers/wsgi.py", "Django: request, middleware, response"),
    ("RequestTraceMiddleware.__call__", "gateway_project/observability.py", "Django: request, middleware, response"),
    ("PrometheusBeforeMiddleware.process_request", "django_prometheus/middleware.py", "django-prometheus middleware"),
    ("PrometheusAfterMiddleware.process_request", "orchestration/web/ops_metrics.py", "django-prometheus middleware"),
    ("PrometheusAfterMiddleware.process_response", "django_prometheus/middleware.py", "django-prometheus middleware"),
    ("aggregate", "orchestration/web/aggregate.py", "view: request parsing, context, error mapping"),
    ("admit", "orchestration/web/edge.py", "edge: authentication, admission"),
    ("_limit", "orchestration/web/edge.py", "edge: rate limits"),
    ("Executor.run", "orchestration/executor.py", "executor: stages, greenlets, retries"),
    ("build_request", "orchestration/downstream/request.py", "templates: rendering the requests"),
    ("DownstreamClient.attempt", "orchestration/downstream/client.py", "call: breaker, bulkhead, headers, outcome"),
    ("Request.__init__", "httpx/_models.py", "call: httpx Request and Response objects"),
    ("Response.__init__", "httpx/_models.py", "call: httpx Request and Response objects"),
    ("PropagatingTransport.handle_request", "orchestration/observability/tracing.py", "call: metrics and tracing"),
    ("Urllib3Transport.handle_request", "orchestration/downstream/transport.py", "call: transport, sockets"),
    ("Urllib3Transport.lean_exchange", "orchestration/downstream/transport.py", "call: transport, sockets"),
    ("DownstreamClient._read", "orchestration/downstream/client.py", "call: body, JSON decoding"),
    ("on_attempt", "orchestration/observability/telemetry_observer.py", "call: metrics and tracing"),
    ("Executor._observe", "orchestration/executor.py", "call: metrics and tracing"),
    ("assemble", "orchestration/assembly.py", "templates: assembling the response"),
    ("json_response", "orchestration/web/aggregate.py", "response: JSON encoding"),
    ("write_access_line", "orchestration/observability/access_log.py", "access log line"),
    ("Hub.run", "gevent/hub.py", "gevent hub (event loop, greenlet switches)"),
)
IDLE_FRAMES = ("_WorkerGreenlet.run",)  # gevent's thread pool waiting for work: not the request's CPU


def layers(raw: Path) -> list[Cost]:
    """Samples by layer (``LAYERS``), shares of the samples that were not idle."""
    counts: Counter[str] = Counter()
    busy = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [FRAME.match(frame.strip()) for frame in stack.split(";")]
        if any(m and m["func"].startswith(IDLE_FRAMES) for m in frames):
            continue
        layer = "other (gunicorn, gevent, anything unnamed)"
        for match in frames:
            if match is None:
                continue
            for func, path, name in LAYERS:
                if match["func"] == func and match["file"].endswith(path):
                    layer = name
        counts[layer] += int(count_text)
        busy += int(count_text)
    return [Cost(label, n, n / busy if busy else 0.0) for label, n in counts.most_common()]


def layers_markdown(costs: list[Cost]) -> str:
    lines = ["| share | samples | layer |", "|---:|---:|---|"]
    lines += [f"| {c.share:.1%} | {c.samples} | {c.label} |" for c in costs]
    return "\n".join(lines) + "\n"


def markdown(summary: Summary) -> str:
    def table(title: str, costs: list[Cost]) -> list[str]:
        lines = [f"**{title}**", "", "| share | samples | frame |", "|---:|---:|---|"]
        lines += [f"| {c.share:.1%} | {c.samples} | `{c.label}` |" for c in costs]
        return [*lines, ""]

    out = [f"{summary.total} samples (py-spy, 100 Hz, one worker, idle time excluded).", ""]
    out += table("Packages by self time (code of the package itself)", summary.packages_self)
    out += table(
        "Packages by inclusive time (anywhere on the stack; wrappers such as middleware count everything below them)",
        summary.packages_inclusive,
    )
    out += table("Top functions by self time", summary.functions_self)
    out += table("The project's own frames by inclusive time", summary.project_inclusive)
    return "\n".join(out)
