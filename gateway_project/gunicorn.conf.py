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


def on_starting(server):  # type: ignore[no-untyped-def]
    """Start with an empty metrics directory: files of a previous run would be
    merged into /metrics and show counts nobody served."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        import pathlib

        path = pathlib.Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Drop the exiting worker's Prometheus multiprocess files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Build the worker's runtime (URLconf, compiled plan, downstream clients, edge)
    before it accepts its first connection: otherwise the first requests after a
    start or a restart pay for it under load, and a starved worker lets attempts
    time out and breakers open (bench/README.md)."""
    from gateway_project import wiring

    wiring.warm_up()
