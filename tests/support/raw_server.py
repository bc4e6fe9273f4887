"""A raw loopback socket server for tests that check bytes on the wire."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


def serve_connections(server: socket.socket, handle: Callable[[socket.socket], None]) -> None:
    """Accept on ``server`` in a daemon thread until it is closed; each connection is
    handled by ``handle`` in a thread of its own."""

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
