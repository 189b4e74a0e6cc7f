"""Serve a WSGI app on a loopback port from a background thread."""
from __future__ import annotations

import threading

from werkzeug.serving import make_server


class ServerThread:
    """A threaded werkzeug server: `start()` returns once it accepts connections.

    `port=0` picks a free port; read it back from `.port` or `.url`.
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self.server = make_server(host, port, app, threaded=True)
        self.host = host
        self.port = self.server.server_port
        self._thread = threading.Thread(
            target=self.server.serve_forever, name=f"sandbox-{self.port}", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ServerThread":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
