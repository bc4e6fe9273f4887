"""/readyz while the instance drains (contract section 9): 503 at once, from the cached
probe's state or not, and checking nothing; the flag is a file the gunicorn master makes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client
from django.urls import get_resolver

from orchestration.clock import FakeClock
from orchestration.web import draining, health
from orchestration.web.readiness import ReadinessProbe


@pytest.fixture
def flag(tmp_path: Path) -> Iterator[draining.DrainFlag]:
    flag = draining.DrainFlag(tmp_path / "draining")
    previous = draining.install_flag(flag)
    yield flag
    draining.install_flag(previous)


@pytest.mark.django_db
def test_readyz_answers_503_the_moment_the_flag_is_raised_despite_a_cached_ok(flag: draining.DrainFlag) -> None:
    runs: list[int] = []
    probe = ReadinessProbe({"database": lambda: runs.append(1) is None}, clock=FakeClock(), ttl_s=60.0)
    get_resolver().url_patterns  # noqa: B018 - the URLconf's import installs the production probe: first
    previous = health.install_readiness(probe)
    try:
        client = Client()
        assert client.get("/readyz").status_code == 200  # cached "ok" for a minute from here
        flag.raise_flag()
        reply = client.get("/readyz")
        assert reply.status_code == 503
        assert json.loads(reply.content) == {"status": "draining", "failing": ["draining"]}
        assert reply["Cache-Control"] == "no-store"
        assert runs == [1]  # draining checks nothing
        flag.clear()
        assert client.get("/readyz").status_code == 200
    finally:
        health.install_readiness(previous)


def test_without_a_flag_file_nothing_is_ever_draining(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(draining.FLAG_FILE_VARIABLE, raising=False)
    flag = draining.DrainFlag.from_environment()
    flag.raise_flag()
    assert flag.path is None and not flag.is_raised()


def test_the_flag_path_comes_from_the_environment_at_first_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    previous = draining.install_flag(None)
    try:
        monkeypatch.setenv(draining.FLAG_FILE_VARIABLE, str(tmp_path / "flag"))
        assert not draining.process_flag().is_raised()
        (tmp_path / "flag").touch()  # as the master does on SIGTERM
        assert draining.process_flag().is_raised()
    finally:
        draining.install_flag(previous)
