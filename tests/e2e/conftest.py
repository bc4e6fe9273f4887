"""Shared end-to-end fixtures: fake downstream servers and a real gunicorn gateway.

``fake_downstream(routes)`` starts an HTTP server on a loopback port that answers
each path from ``routes``, counts hits per path and records request headers.
``gateway_server(config_yaml, env_overrides, workers=2)`` creates and migrates
a PostgreSQL database, imports the configuration with ``manage.py gateway import``,
flushes its Redis database and starts gunicorn with the production config file,
returning once /healthz answers. Everything started is stopped at teardown.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ARTIFACTS = ROOT / "test-artifacts"

# A route answers (status, JSON body) or (status, JSON body, headers); a callable gets the handler.
Answer = tuple[int, Any] | tuple[int, Any, Mapping[str, str]]
Route = Answer | Callable[["_Handler"], Answer]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FakeDownstream:
    """A running fake service; ``routes`` may be changed while it runs."""

    routes: dict[str, Route]
    hits: Counter[str] = field(default_factory=Counter)
    headers: dict[str, list[dict[str, str]]] = field(default_factory=lambda: defaultdict(list))
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, handler: _Handler) -> Answer:
        path = urlsplit(handler.path).path
        route = self.routes.get(path, self.routes.get("*", (404, {"error": "no route"})))
        return route(handler) if callable(route) else route


class _Handler(BaseHTTPRequestHandler):
    fake: FakeDownstream
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        self.fake.hits[path] += 1
        self.fake.headers[path].append({k.lower(): v for k, v in self.headers.items()})
        answer = self.fake.answer(self)
        status, body = answer[0], answer[1]
        extra: Mapping[str, str] = answer[2] if len(answer) > 2 else {}  # type: ignore[misc]
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def fake_downstream() -> Iterator[Callable[[dict[str, Route]], FakeDownstream]]:
    started: list[FakeDownstream] = []

    def start(routes: dict[str, Route]) -> FakeDownstream:
        fake = FakeDownstream(dict(routes))
        handler = type("Handler", (_Handler,), {"fake": fake})
        fake.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        fake.server.daemon_threads = True
        threading.Thread(target=fake.server.serve_forever, daemon=True).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        assert fake.server is not None
        fake.server.shutdown()
        fake.server.server_close()


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
    multiproc_dir: Path

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
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


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


def _wait_until_up(server: GatewayServer, timeout_s: float = 60.0) -> None:
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
        time.sleep(0.2)
    raise AssertionError("gunicorn did not answer /healthz:\n" + "\n".join(server.log_lines()[-40:]))


def _flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture
def gateway_server(tmp_path: Path) -> Iterator[Callable[..., GatewayServer]]:
    """Factory: ``gateway_server(config_yaml, env_overrides=None, workers=2, database=None, redis_db=None)``;
    by default a database and Redis db of its own (``isolated_targets("ops", 4)``)."""
    started: list[GatewayServer] = []

    def start(
        config_yaml: str,
        env_overrides: Mapping[str, str] | None = None,
        workers: int = 2,
        *,
        database: str | None = None,
        redis_db: int | None = None,
    ) -> GatewayServer:
        default_database, default_redis_db = isolated_targets("ops", 4)
        database = database or default_database
        redis_db = default_redis_db if redis_db is None else redis_db
        index = len(started)
        multiproc = tmp_path / f"prom-{index}"
        multiproc.mkdir()
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_", "PYTEST_"))},
            "PORT": str(port),
            "WEB_CONCURRENCY": str(workers),
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "DATABASE_URL": database_url(database),
            "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
            "DJANGO_SECRET_KEY": "test",
            "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
            "HOME": str(tmp_path),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            **dict(env_overrides or {}),
        }
        if index == 0:
            _create_database(env["DATABASE_URL"])
            _manage(env, "migrate", "--noinput", "-v", "0")
            _manage(env, "flush", "--noinput", "-v", "0")  # every test starts from an empty database
            _flush_redis(env["REDIS_URL"])
            config_file = tmp_path / "gateway.yaml"
            config_file.write_text(config_yaml, encoding="utf-8")
            _manage(env, "gateway", "import", str(config_file))
        log_path = tmp_path / f"gunicorn-{index}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", "gateway_project/gunicorn.conf.py", "gateway_project.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = GatewayServer(f"http://127.0.0.1:{port}", env, process, log_path, multiproc)
        started.append(server)
        _wait_until_up(server)
        return server

    yield start
    for server in started:
        server.stop()


# ---------------------------------------------------------------------------
# Module-scoped variants: one gunicorn (and its fake services) shared by the tests
# of a module, for modules whose tests can share a configuration.
# ---------------------------------------------------------------------------


def start_fake_downstream(routes: dict[str, Route]) -> FakeDownstream:
    """Start a ``FakeDownstream`` outside any fixture; stop it with ``stop_fake_downstream``."""
    fake = FakeDownstream(dict(routes))
    handler = type("Handler", (_Handler,), {"fake": fake})
    fake.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    fake.server.daemon_threads = True
    threading.Thread(target=fake.server.serve_forever, daemon=True).start()
    return fake


def stop_fake_downstream(fake: FakeDownstream) -> None:
    if fake.server is not None:
        fake.server.shutdown()
        fake.server.server_close()


@pytest.fixture(scope="module")
def module_fake_downstream() -> Iterator[Callable[[dict[str, Route]], FakeDownstream]]:
    """``fake_downstream`` that lives as long as the test module."""
    started: list[FakeDownstream] = []

    def start(routes: dict[str, Route]) -> FakeDownstream:
        started.append(start_fake_downstream(routes))
        return started[-1]

    yield start
    for fake in started:
        stop_fake_downstream(fake)


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
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_", "PYTEST_"))},
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "DATABASE_URL": database_url(database),
        "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "DJANGO_SECRET_KEY": "test",
        "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
        "HOME": str(workdir),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **dict(env_overrides or {}),
    }
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
    log_path = workdir / "gunicorn.log"
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-c", "gateway_project/gunicorn.conf.py", "gateway_project.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = GatewayServer(f"http://127.0.0.1:{port}", env, process, log_path, multiproc)
    try:
        _wait_until_up(server)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def module_gateway_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., GatewayServer]]:
    """Factory like ``gateway_server`` (``database`` and ``redis_db`` are required), stopped
    when the module's tests are done."""
    started: list[GatewayServer] = []

    def start(
        config_yaml: str,
        env_overrides: Mapping[str, str] | None = None,
        workers: int = 2,
        *,
        database: str,
        redis_db: int,
    ) -> GatewayServer:
        workdir = tmp_path_factory.mktemp("gateway")
        started.append(
            launch_gateway(workdir, config_yaml, env_overrides, workers, database=database, redis_db=redis_db)
        )
        return started[-1]

    yield start
    for server in started:
        server.stop()
