"""The default worker count: CPUs the process may use (affinity, cgroup quota), not the host's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway_project import cpus

ROOT = Path(__file__).resolve().parents[2]


def _own_cgroup(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proc-self-cgroup"
    path.write_text(text)
    return path


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def eight_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))


@pytest.mark.usefixtures("eight_cpus")
def test_a_cgroup_v2_quota_caps_the_affinity_rounded_up(tmp_path: Path) -> None:
    _write(tmp_path / "cpu.max", "150000 100000\n")
    assert cpus.cgroup_cpu_quota(tmp_path, _own_cgroup(tmp_path, "0::/\n")) == 1.5
    assert cpus.usable_cpus(tmp_path, _own_cgroup(tmp_path, "0::/\n")) == 2


@pytest.mark.usefixtures("eight_cpus")
def test_the_process_own_v2_cgroup_is_read_before_the_root(tmp_path: Path) -> None:
    _write(tmp_path / "cpu.max", "max 100000\n")
    _write(tmp_path / "kubepods" / "pod1" / "cpu.max", "50000 100000\n")
    own = _own_cgroup(tmp_path, "0::/kubepods/pod1\n")
    assert cpus.usable_cpus(tmp_path, own) == 1  # half a CPU of quota: one worker's worth, at least 1


@pytest.mark.usefixtures("eight_cpus")
def test_no_quota_leaves_the_affinity(tmp_path: Path) -> None:
    _write(tmp_path / "cpu.max", "max 100000\n")
    assert cpus.cgroup_cpu_quota(tmp_path, _own_cgroup(tmp_path, "0::/\n")) is None
    assert cpus.usable_cpus(tmp_path, _own_cgroup(tmp_path, "0::/\n")) == 8


@pytest.mark.usefixtures("eight_cpus")
def test_cgroup_v1_quota_and_its_unlimited_value(tmp_path: Path) -> None:
    own = _own_cgroup(tmp_path, "1:cpu:/\n0::/\n")
    _write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000\n")
    _write(tmp_path / "cpu" / "cpu.cfs_quota_us", "-1\n")
    assert cpus.usable_cpus(tmp_path, own) == 8
    _write(tmp_path / "cpu" / "cpu.cfs_quota_us", "300000\n")
    assert cpus.usable_cpus(tmp_path, own) == 3


@pytest.mark.usefixtures("eight_cpus")
def test_unreadable_or_garbled_cgroup_files_leave_the_affinity(tmp_path: Path) -> None:
    assert cpus.usable_cpus(tmp_path / "absent", tmp_path / "absent-cgroup") == 8
    _write(tmp_path / "cpu.max", "lots 0\n")
    assert cpus.usable_cpus(tmp_path, _own_cgroup(tmp_path, "0::/\n")) == 8


def test_the_affinity_counts_not_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    assert cpus.usable_cpus(tmp_path / "absent", tmp_path / "absent-cgroup") == 1
    assert cpus.default_workers() >= cpus.MIN_WORKERS


def test_default_workers_is_one_per_usable_cpu_with_a_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 6)
    assert cpus.default_workers() == 6
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 1)
    assert cpus.default_workers() == cpus.MIN_WORKERS


def _configured_workers(env: dict[str, str], cpu: int | None = None) -> tuple[int, bool]:
    """(gunicorn.conf.py's ``workers``, whether reading it imported the ``gateway_project``
    package) in a fresh process started from outside the project, as with ``gunicorn --chdir``."""
    code = "import runpy, sys; ns = runpy.run_path(sys.argv[1]); print(ns['workers'], 'gateway_project' in sys.modules)"
    preexec = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "gateway_project" / "gunicorn.conf.py")],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=preexec,
        check=True,
    )
    workers, imported = done.stdout.split()
    return int(workers), imported == "True"


def test_the_server_config_uses_the_default_unless_web_concurrency_is_set() -> None:
    env = {key: value for key, value in os.environ.items() if key != "WEB_CONCURRENCY"}
    workers, imported = _configured_workers(env, cpu=min(os.sched_getaffinity(0)))
    assert workers == max(cpus.MIN_WORKERS, 1)  # one CPU in the affinity
    assert not imported, "the master does not load the package (and Celery's app with it)"
    assert _configured_workers({**env, "WEB_CONCURRENCY": "5"})[0] == 5
