"""Two gateway instances, each in its own network namespace with its own address, behind
HAProxy in a third, on a private LAN the test makes (tests/support/netns.py):

    lb    10.216.7.1   HAProxy :8080 (and the test's client threads)
    gw-a  10.216.7.11  gunicorn :8000          gw-b  10.216.7.12  gunicorn :8000
    svc   10.216.7.20  the fake downstream services

PostgreSQL and a Redis of the test's own are reached over Unix sockets (not network
namespaced), so nothing is added to the machine's own network.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e import deploy_support as deploy
from tests.e2e.conftest import ROOT, VENV_BIN, _create_database, _manage_in_one_process, isolated_targets, process_env
from tests.support import netns
from tests.support.fake_downstream import FakeDownstream, Route, _Handler, _Server
from tests.support.haproxy import HAProxy, start_haproxy

LAN = netns.PrivateLan("gwdeploy", "10.216.7", {"gw-a": 11, "gw-b": 12, "svc": 20})
INSTANCES = ("gw-a", "gw-b")
LB_PORT = 8080


class LanFakeDownstream(FakeDownstream):
    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"


def start_fake_in(host: str, routes: dict[str, Route]) -> FakeDownstream:
    import threading

    fake = LanFakeDownstream(dict(routes))
    handler = type("Handler", (_Handler,), {"fake": fake})
    with netns.entered(LAN.name(host)):  # the listening socket belongs to this namespace
        fake.server = _Server((LAN.address(host), 0), handler)
    fake.server.daemon_threads = True
    threading.Thread(target=fake.server.serve_forever, daemon=True).start()
    return fake


@dataclass
class Topology:
    workdir: Path
    env: dict[str, str]
    work: FakeDownstream
    fragile: FakeDownstream
    gateways: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    proxy: HAProxy | None = None
    redis_process: subprocess.Popen[bytes] | None = None
    peers: set[str] = field(default_factory=set)  # addresses the work service was called from

    @property
    def urls(self) -> list[str]:
        return [f"http://{LAN.address(host)}:8000" for host in INSTANCES]

    @property
    def proxy_url(self) -> str:
        return f"http://{LAN.address('lb')}:{LB_PORT}"

    def import_config(self, config_yaml: str) -> None:
        config = self.workdir / f"gateway-{time.monotonic_ns()}.yaml"
        config.write_text(config_yaml, encoding="utf-8")
        _manage_in_one_process(self.env, ("gateway", "import", str(config)))

    def worker_pids(self) -> list[int]:
        pids = []
        for master in self.gateways.values():
            children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
            pids += [int(pid) for pid in children]
        return pids


def _wait_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    if shutil.which("ip") is None or shutil.which("haproxy") is None:
        pytest.fail("ip (iproute2) and haproxy are needed: scripts/test-deps.sh installs them")
    LAN.create()
    topology: Topology | None = None
    try:
        redis_socket = tmp_path / "redis.sock"
        redis_process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", "0", "--unixsocket", str(redis_socket),
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=(tmp_path / "redis.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        peers: set[str] = set()

        def quick(handler: _Handler) -> tuple[int, object]:
            peers.add(handler.client_address[0])
            return 200, {"value": "q"}

        work = start_fake_in("svc", {"/quick": quick, "*": (200, {"value": "c"})})
        fragile = start_fake_in("svc", {"/broken": (500, {"error": "broken"}), "/flaky": (200, {"ok": True})})
        database, _ = isolated_targets("deploy_hosts", 7)
        env = {
            **process_env(tmp_path, database=database, redis_db=0),
            "DATABASE_URL": f"postgres://postgres@/{database}",  # libpq's default Unix socket
            "REDIS_URL": f"unix://{redis_socket}?db=0",
            "ALLOWED_HOSTS": ",".join(["localhost", *(LAN.address(h) for h in ("lb", *INSTANCES))]),
            "GATEWAY_HEALTH_TOKEN": deploy.HEALTH_TOKEN,
            "GATEWAY_DRAIN_ACCEPT_S": "0",
            "PORT": "8000",
            "WEB_CONCURRENCY": "2",
        }
        topology = Topology(tmp_path, env, work, fragile, redis_process=redis_process, peers=peers)
        _create_database(env["DATABASE_URL"])
        config = tmp_path / "gateway.yaml"
        config.write_text(deploy.config_yaml(work.url, fragile.url), encoding="utf-8")
        _manage_in_one_process(
            env,
            ("migrate", "--noinput", "-v", "0"),
            ("flush", "--noinput", "-v", "0"),
            ("gateway", "import", str(config)),
        )
        for host in INSTANCES:
            multiproc = tmp_path / f"prom-{host}"
            multiproc.mkdir()
            host_env: Mapping[str, str] = {**env, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
            topology.gateways[host] = subprocess.Popen(
                [*LAN.exec_prefix(host), str(VENV_BIN / "gunicorn"), "-c", "gateway_project/gunicorn.conf.py",
                 "gateway_project.wsgi"],
                cwd=ROOT, env=dict(host_env), stdout=(tmp_path / f"{host}.log").open("wb"),
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        servers = [(host, LAN.address(host), 8000) for host in INSTANCES]
        topology.proxy = start_haproxy(tmp_path, (LAN.address("lb"), LB_PORT), servers, netns=LAN.name("lb"))
        with netns.entered(LAN.name("lb")):
            for host, url in zip(INSTANCES, topology.urls, strict=True):
                _wait_up(url, topology.gateways[host], tmp_path / f"{host}.log")
        topology.proxy.wait_until(dict.fromkeys(INSTANCES, "UP"))
        yield topology
    finally:
        if topology is not None:
            if topology.proxy is not None:
                topology.proxy.stop()
            for process in topology.gateways.values():
                process.terminate()
            for process in topology.gateways.values():
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
            for fake in (topology.work, topology.fragile):
                if fake.server is not None:
                    fake.server.shutdown()
                    fake.server.server_close()
            if topology.redis_process is not None:
                topology.redis_process.terminate()
                topology.redis_process.wait(timeout=10)
        LAN.remove()
