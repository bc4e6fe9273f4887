"""Production server settings: gevent workers, bound to 0.0.0.0:$PORT.

gevent must patch the standard library before anything imports ssl, sockets,
httpx or psycopg (psycopg picks its wait strategy at import), so the patch is
the first statement here and the app is never preloaded.
"""

from gevent import monkey

monkey.patch_all()

import importlib.util  # noqa: E402
import os  # noqa: E402


def _default_workers() -> int:
    """``gateway_project/cpus.py``'s, loaded from beside this file: gunicorn reads this file
    before it puts ``--chdir`` on sys.path, and importing the package would load Celery's app
    into the master (``gateway_project/__init__.py``)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpus.py")
    spec = importlib.util.spec_from_file_location("gateway_cpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return int(module.default_workers())


bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gateway_project.gunicorn_worker.GatewayWorker"  # gevent, with JSON envelopes for unparseable requests
workers = int(os.environ.get("WEB_CONCURRENCY") or _default_workers())  # per usable CPU, not per host CPU
worker_connections = int(os.environ.get("GATEWAY_WORKER_CONNECTIONS", "1000"))
preload_app = False
timeout = 30
# Graceful stop (contract section 9, docs/deployment.md): on SIGTERM /readyz answers 503 at
# once and the instance keeps serving for GATEWAY_DRAIN_ACCEPT_S, so a load balancer polling
# /readyz takes it out before its listener closes; then it stops accepting and the requests in
# flight get the rest of GATEWAY_DRAIN_S to finish. GATEWAY_DRAIN_S bounds SIGTERM-to-exit.
DRAIN_S = float(os.environ.get("GATEWAY_DRAIN_S", "20"))
DRAIN_ACCEPT_S = float(os.environ.get("GATEWAY_DRAIN_ACCEPT_S", "2"))
if DRAIN_S <= 0 or not 0 <= DRAIN_ACCEPT_S < DRAIN_S:
    raise SystemExit(
        f"GATEWAY_DRAIN_S ({DRAIN_S}) must be > 0 and GATEWAY_DRAIN_ACCEPT_S ({DRAIN_ACCEPT_S}) in [0, GATEWAY_DRAIN_S)"
    )
graceful_timeout = max(1, round(DRAIN_S - DRAIN_ACCEPT_S))
keepalive = 5
accesslog = None  # the gateway writes its own structured access line
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
control_socket_disable = True
# The gateway alone decides what X-Forwarded-Proto means (GATEWAY_TLS_PROXY, believed only from
# GATEWAY_TRUSTED_PROXIES: gateway_project/forwarded_proto.py); gunicorn would otherwise believe
# it from loopback peers (its forwarded_allow_ips) and hand Django an "https" request.
secure_scheme_headers: dict[str, str] = {}
# Nor may any peer set SCRIPT_NAME or PATH_INFO by header (gunicorn's forwarder_headers). With
# both lists empty (and cleartext HTTP/2, the trust list's other use, off: http_protocols is h1),
# gunicorn's proxy trust grants nothing, so it is given to every peer: that only spares gunicorn
# parsing the peer's address against forwarded_allow_ips on every request.
forwarder_headers = ""
forwarded_allow_ips = "*"


METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server):  # type: ignore[no-untyped-def]
    """Give /metrics one directory where every worker writes its values, so a scrape
    answered by any worker counts them all (``orchestration.web.ops_metrics``).

    Without ``PROMETHEUS_MULTIPROC_DIR`` the master makes a private one here, before
    any worker is forked, and exports it: workers import prometheus_client only after
    the fork (the app is never preloaded), and it picks its multiprocess mode from
    this variable at import. ``on_exit`` removes the private directory. Either way the
    directory starts empty: files of a previous run would be merged into /metrics and
    show counts nobody served."""
    import pathlib
    import sys
    import tempfile

    directory = os.environ.get(METRICS_DIR_VARIABLE)
    if not directory:
        directory = tempfile.mkdtemp(prefix="gateway-metrics-")
        os.environ[METRICS_DIR_VARIABLE] = directory
        # Kept on the arbiter: a reload (HUP) runs this file again, the arbiter stays.
        server.gateway_private_metrics_dir = directory
        if "prometheus_client" in sys.modules:  # e.g. a preloaded app: too late for this process tree
            server.log.warning("metrics: prometheus_client was imported before %s was set", METRICS_DIR_VARIABLE)
    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    _make_drain_flag(server)  # type: ignore[no-untyped-call]


def _make_drain_flag(server):  # type: ignore[no-untyped-def]
    """A private flag file path for this master's workers (``orchestration.web.draining``),
    exported before any worker is forked; the file itself appears only on SIGTERM."""
    import pathlib
    import tempfile

    from orchestration.web.draining import FLAG_FILE_VARIABLE

    directory = tempfile.mkdtemp(prefix="gateway-drain-")
    server.gateway_drain_dir = directory
    os.environ[FLAG_FILE_VARIABLE] = str(pathlib.Path(directory) / "draining")


def when_ready(server):  # type: ignore[no-untyped-def]
    """SIGTERM drains instead of closing the listener at once (see DRAIN_S above)."""
    import queue
    import signal
    import time

    from orchestration.web.draining import DrainFlag

    flag = DrainFlag.from_environment()
    flag.clear()

    def handle_term():  # type: ignore[no-untyped-def]
        flag.raise_flag()  # every worker's /readyz answers 503 from now on
        server.log.info("SIGTERM: draining; /readyz answers 503, accepting for %.1f s more", DRAIN_ACCEPT_S)
        deadline = time.monotonic() + DRAIN_ACCEPT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                sig = server.SIG_QUEUE.get(block=True, timeout=left)
            except queue.Empty:
                break
            if sig in (signal.SIGINT, signal.SIGQUIT):  # an impatient operator: stop now
                server.stop(False)
                raise StopIteration
            if sig == signal.SIGCHLD:  # not replaced: we are stopping. All gone (the signal went to
                server.reap_workers()  # the whole process group, e.g. systemd): nothing left to drain
                if not server.WORKERS:
                    break
        raise StopIteration  # gunicorn's own graceful stop: listener closed, workers finish

    server.handle_term = handle_term


def pre_request(worker, req):  # type: ignore[no-untyped-def]
    """While draining, answer with ``Connection: close``: a keep-alive client (or balancer)
    opens its next connection elsewhere instead of finding this one closed."""
    from orchestration.web.draining import process_flag

    if process_flag().is_raised():
        req.must_close = True


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Drop the exiting worker's Prometheus multiprocess files."""
    if os.environ.get(METRICS_DIR_VARIABLE):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def pre_exec(server):  # type: ignore[no-untyped-def]
    """A new master (USR2) makes its own private directory: this one goes with us."""
    if getattr(server, "gateway_private_metrics_dir", None):
        server.cfg.env_orig.pop(METRICS_DIR_VARIABLE, None)
    from orchestration.web.draining import FLAG_FILE_VARIABLE

    server.cfg.env_orig.pop(FLAG_FILE_VARIABLE, None)


def on_exit(server):  # type: ignore[no-untyped-def]
    """Remove the private metrics directory (one given in the environment is kept) and the drain flag's."""
    import shutil

    for directory in (getattr(server, "gateway_private_metrics_dir", None), getattr(server, "gateway_drain_dir", None)):
        if directory:
            shutil.rmtree(directory, ignore_errors=True)


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Build the worker's runtime (URLconf, compiled plan, downstream clients, edge)
    before it accepts its first connection: otherwise the first requests after a
    start or a restart pay for it under load, and a starved worker lets attempts
    time out and breakers open (bench/README.md). Then what the start built is exempted
    from the garbage collector's full collections (``gateway_project.heap``)."""
    from gateway_project import heap, wiring

    wiring.warm_up()
    heap.freeze_startup_objects()
