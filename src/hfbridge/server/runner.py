"""Running the app: in the foreground (``hfbridge serve``) or on a background thread (the demo,
notebooks and tests embed the server in their own process)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from .app import ServerSettings, create_app
from .connections import uvicorn_config

__all__ = ["EmbeddedServer", "listening_socket"]


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn, with TCP_NODELAY (inherited by accepted connections).

    Without it, a response's body waits for the client's delayed ACK of its headers: about
    40 ms on every request on Linux (measured: 44 ms -> 1.8 ms per request)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


class EmbeddedServer:
    """``hfbridge serve`` on a thread of this process, on a free port of 127.0.0.1 by default.

    >>> from hfbridge import InferenceClient
    >>> from hfbridge.server.runner import EmbeddedServer
    >>> with EmbeddedServer() as server, InferenceClient(server.url) as client:
    ...     client.base_url == server.url
    True
    """

    def __init__(self, settings: ServerSettings | None = None, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        import uvicorn

        self.settings = settings or ServerSettings()
        self.app = create_app(self.settings)
        self._socket = listening_socket(host, port)
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn_config(self.app, self.settings.limits, log_level=log_level, lifespan="on", timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True, name="hfbridge-serve")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def models(self) -> Any:
        """The app's :class:`~hfbridge.server.models.ModelManager` (load states, preloading)."""
        return self.app.state.server.models

    @property
    def jobs(self) -> Any:
        """The app's :class:`~hfbridge.server.cancellation.Jobs` (inference in flight, cancelled count)."""
        return self.app.state.server.jobs

    @property
    def batchers(self) -> Any:
        """The app's :class:`~hfbridge.server.batching.Batchers` (forward passes shared by requests)."""
        return self.app.state.server.batchers

    def start(self, timeout: float = 30.0) -> "EmbeddedServer":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the embedded server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def wait_until_loaded(self, model_ids: list[str], timeout: float = 600.0) -> None:
        """Load these models now (in the background pool) and block until each is ready."""
        for future in self.models.preload(model_ids):
            future.result(timeout=timeout)

    def stop(self) -> None:
        """Stop as ``hfbridge serve`` does on SIGTERM: in-flight requests get the limits'
        ``shutdown_timeout`` to finish, then they are cancelled."""
        self._server.should_exit = True
        self._thread.join(timeout=self.settings.limits.shutdown_timeout + 10)
        self._socket.close()

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
