"""Production server settings: gevent workers, bound to 0.0.0.0:$PORT.

gevent must patch the standard library before anything imports ssl, sockets,
httpx or psycopg (psycopg picks its wait strategy at import), so the patch is
the first statement here and the app is never preloaded.
"""

from gevent import monkey

monkey.patch_all()

import multiprocessing  # noqa: E402
import os  # noqa: E402

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", str(max(2, multiprocessing.cpu_count()))))
worker_connections = int(os.environ.get("GATEWAY_WORKER_CONNECTIONS", "1000"))
preload_app = False
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = None  # the gateway writes its own structured access line
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
control_socket_disable = True
# The gateway alone decides what X-Forwarded-Proto means (GATEWAY_TLS_PROXY, believed only from
# GATEWAY_TRUSTED_PROXIES: gateway_project/forwarded_proto.py); gunicorn would otherwise believe
# it from loopback peers (its forwarded_allow_ips) and hand Django an "https" request.
secure_scheme_headers: dict[str, str] = {}


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


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Drop the exiting worker's Prometheus multiprocess files."""
    if os.environ.get(METRICS_DIR_VARIABLE):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def pre_exec(server):  # type: ignore[no-untyped-def]
    """A new master (USR2) makes its own private directory: this one goes with us."""
    if getattr(server, "gateway_private_metrics_dir", None):
        server.cfg.env_orig.pop(METRICS_DIR_VARIABLE, None)


def on_exit(server):  # type: ignore[no-untyped-def]
    """Remove the private metrics directory (one given in the environment is kept)."""
    directory = getattr(server, "gateway_private_metrics_dir", None)
    if directory:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Build the worker's runtime (URLconf, compiled plan, downstream clients, edge)
    before it accepts its first connection: otherwise the first requests after a
    start or a restart pay for it under load, and a starved worker lets attempts
    time out and breakers open (bench/README.md)."""
    from gateway_project import wiring

    wiring.warm_up()
