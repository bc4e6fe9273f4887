"""Shared end-to-end fixtures: fake downstream servers and a real gunicorn gateway.

``fake_downstream(routes)`` and ``module_fake_downstream`` come from
tests/support/fake_downstream.py (fake HTTP services on loopback).
``gateway_server(config_yaml, env_overrides, workers=2)`` creates and migrates
a PostgreSQL database, imports the configuration with ``manage.py gateway import``,
flushes its Redis database and starts gunicorn with the production config file,
returning once /healthz answers. Everything started is stopped at teardown.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.fake_downstream import fake_downstream, free_port, module_fake_downstream  # noqa: F401 - fixtures
from tests.support.redis import redis_url_for_db

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ARTIFACTS = ROOT / "test-artifacts"


def database_url(name: str) -> str:
    """DATABASE_URL's server (PostgreSQL) with our own database name."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        base = "postgres://postgres@127.0.0.1:5432/postgres"
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def isolated_targets(suffix: str, redis_offset: int) -> tuple[str, int]:
    """A database name and Redis db derived from DATABASE_URL/REDIS_URL, so two runs
    of the suite with different settings never flush each other's state."""
    base_name = urlsplit(os.environ.get("DATABASE_URL", "")).path.lstrip("/") or "gw"
    redis_path = urlsplit(os.environ.get("REDIS_URL", "")).path.lstrip("/")
    redis_base = int(redis_path) if redis_path.isdigit() else 0
    return f"{base_name}_{suffix}", (redis_base + redis_offset) % 16


def _create_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


@dataclass
class GatewayServer:
    base_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    multiproc_dir: Path | None  # None: gunicorn makes a private one (the production command alone)

    def get(self, path: str, *, headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, headers=headers)

    def request(
        self, method: str, path: str, *, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=dict(headers or {}))
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers.items()), error.read()

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _manage(self.env, *args, check=check)

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the process is still there after 15 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@functools.cache
def collected_static() -> Path:
    """``collectstatic`` once per test process into a directory of its own, as a build or
    deploy does (WhiteNoise serves only STATIC_ROOT): admin and console pages get their CSS."""
    root = Path(tempfile.mkdtemp(prefix="gateway-static-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_", "PYTEST_"))},
        "DJANGO_SECRET_KEY": "test",
        "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
        "STATIC_ROOT": str(root),
    }
    _manage(env, "collectstatic", "--noinput", "-v", "0")
    return root


def process_env(workdir: Path, *, database: str, redis_db: int) -> dict[str, str]:
    """The environment of a gateway process (gunicorn or Celery) on ``database`` and Redis db
    ``redis_db``: ours without OTEL_/PROMETHEUS_/PYTEST_ settings, HOME in ``workdir``, the
    static files collected (``collected_static``)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_", "PYTEST_"))},
        "DATABASE_URL": database_url(database),
        "REDIS_URL": redis_url_for_db(redis_db),
        "DJANGO_SECRET_KEY": "test",
        "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
        "HOME": str(workdir),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # No load balancer to warn in most tests: SIGTERM closes the listener at once
        # (the graceful-stop tests set it: tests/e2e/test_graceful_stop_e2e.py).
        "GATEWAY_DRAIN_ACCEPT_S": "0",
        "STATIC_ROOT": str(collected_static()),
    }


def gateway_env(
    workdir: Path,
    multiproc: Path | None,
    env_overrides: Mapping[str, str] | None,
    workers: int,
    *,
    database: str,
    redis_db: int,
) -> dict[str, str]:
    """``process_env`` plus gunicorn's port (a free one), workers and Prometheus directory
    (none when ``multiproc`` is None); ``env_overrides`` last."""
    return {
        **process_env(workdir, database=database, redis_db=redis_db),
        "PORT": str(free_port()),
        "WEB_CONCURRENCY": str(workers),
        **({"PROMETHEUS_MULTIPROC_DIR": str(multiproc)} if multiproc is not None else {}),
        **dict(env_overrides or {}),
    }


def start_gunicorn(env: dict[str, str], log_path: Path, multiproc: Path | None) -> GatewayServer:
    """gunicorn with the production config on ``env["PORT"]``, logging to ``log_path``; not yet up."""
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-c", "gateway_project/gunicorn.conf.py", "gateway_project.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return GatewayServer(f"http://127.0.0.1:{env['PORT']}", env, process, log_path, multiproc)


def _manage(env: Mapping[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=180,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def wait_until_up(server: GatewayServer, timeout_s: float = 60.0, poll_s: float = 0.2) -> None:
    """Until /healthz answers 200; fails with the log's tail if gunicorn exits or never answers."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError("gunicorn exited:\n" + "\n".join(server.log_lines()[-40:]))
        try:
            status, _, _ = server.get("/healthz")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(poll_s)
    raise AssertionError("gunicorn did not answer /healthz:\n" + "\n".join(server.log_lines()[-40:]))


def wait_until_every_worker_serves(server: GatewayServer, workers: int, timeout_s: float = 60.0) -> list[int]:
    """The worker pids, once each has built its runtime (its log line) and started accepting.
    ``wait_until_up`` returns when one worker answers; a test that needs both (which worker
    answered, how connections spread) waits for this: a worker still booting takes nothing."""
    master = server.process.pid
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pids = [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
        log = "\n".join(server.log_lines())
        if len(pids) == workers and all(f'"process": {pid}, "message": "serving configuration' in log for pid in pids):
            time.sleep(1.0)  # from the runtime's log line to accepting: the heap freeze, the server's start
            return pids
        time.sleep(0.1)
    raise AssertionError("the workers did not all start:\n" + "\n".join(server.log_lines()[-40:]))


def _flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture
def gateway_server(tmp_path: Path) -> Iterator[Callable[..., GatewayServer]]:
    """Factory: ``gateway_server(config_yaml, env_overrides=None, workers=2, database=None, redis_db=None,
    multiproc_dir=True)``; by default a database and Redis db of its own (``isolated_targets("ops", 4)``);
    ``multiproc_dir=False`` leaves PROMETHEUS_MULTIPROC_DIR unset, as the production command alone."""
    started: list[GatewayServer] = []

    def start(
        config_yaml: str,
        env_overrides: Mapping[str, str] | None = None,
        workers: int = 2,
        *,
        database: str | None = None,
        redis_db: int | None = None,
        multiproc_dir: bool = True,
    ) -> GatewayServer:
        default_database, default_redis_db = isolated_targets("ops", 4)
        database = database or default_database
        redis_db = default_redis_db if redis_db is None else redis_db
        index = len(started)
        multiproc = tmp_path / f"prom-{index}" if multiproc_dir else None
        if multiproc is not None:
            multiproc.mkdir()
        env = gateway_env(tmp_path, multiproc, env_overrides, workers, database=database, redis_db=redis_db)
        if index == 0:
            _create_database(env["DATABASE_URL"])
            _manage(env, "migrate", "--noinput", "-v", "0")
            _manage(env, "flush", "--noinput", "-v", "0")  # every test starts from an empty database
            _flush_redis(env["REDIS_URL"])
            config_file = tmp_path / "gateway.yaml"
            config_file.write_text(config_yaml, encoding="utf-8")
            _manage(env, "gateway", "import", str(config_file))
        server = start_gunicorn(env, tmp_path / f"gunicorn-{index}.log", multiproc)
        started.append(server)
        wait_until_up(server)
        return server

    yield start
    for server in started:
        server.stop()


# ---------------------------------------------------------------------------
# Module-scoped variant: one gunicorn (and its fake services) shared by the tests
# of a module, for modules whose tests can share a configuration.
# ---------------------------------------------------------------------------


def _manage_in_one_process(env: Mapping[str, str], *commands: tuple[str, ...]) -> None:
    """Several management commands in one Python process (one Django start-up, not three)."""
    script = (
        "import sys, django\n"
        "from django.core.management import call_command\n"
        "django.setup()\n"
        "for command in " + repr([list(c) for c in commands]) + ":\n"
        "    call_command(*command)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=dict(env), capture_output=True, text=True, timeout=180
    )
    if result.returncode != 0:
        raise AssertionError(f"management commands {commands} failed:\n{result.stdout}\n{result.stderr}")


def launch_gateway(
    workdir: Path,
    config_yaml: str,
    env_overrides: Mapping[str, str] | None = None,
    workers: int = 2,
    *,
    database: str,
    redis_db: int,
) -> GatewayServer:
    """Fresh database and Redis db, the configuration imported, gunicorn started and up."""
    multiproc = workdir / "prom"
    multiproc.mkdir()
    env = gateway_env(workdir, multiproc, env_overrides, workers, database=database, redis_db=redis_db)
    _create_database(env["DATABASE_URL"])
    _flush_redis(env["REDIS_URL"])
    config_file = workdir / "gateway.yaml"
    config_file.write_text(config_yaml, encoding="utf-8")
    _manage_in_one_process(
        env,
        ("migrate", "--noinput", "-v", "0"),
        ("flush", "--noinput", "-v", "0"),
        ("gateway", "import", str(config_file)),
    )
    server = start_gunicorn(env, workdir / "gunicorn.log", multiproc)
    try:
        wait_until_up(server)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def module_gateway_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., GatewayServer]]:
    """Factory like ``gateway_server`` (``database`` and ``redis_db`` are required), stopped
    when the module's tests are done."""
    started: list[GatewayServer] = []

    def start(*args: Any, **kwargs: Any) -> GatewayServer:
        """``launch_gateway``'s arguments after ``workdir``."""
        started.append(launch_gateway(tmp_path_factory.mktemp("gateway"), *args, **kwargs))
        return started[-1]

    yield start
    for server in started:
        server.stop()
